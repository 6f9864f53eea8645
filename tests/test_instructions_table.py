"""benchmarks.instructions reads callgrind_annotate's table (valgrind itself is not run here)."""

from __future__ import annotations

from benchmarks.instructions import _library, _table

_ANNOTATED = """\
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
3,564,990,148 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                    file:function
--------------------------------------------------------------------------------
580,811,983 (16.29%)  P/ceval.c:_PyEval_EvalFrameDefault'2 [/py/lib/libpython3.11.so.1.0]
116,090,568 ( 3.26%)  ???:json_skip_string [/v/msgspec/_core.cpython-311-x86_64-linux-gnu.so]
 23,752,560 ( 0.67%)  ???:sqlite3VdbeExec [/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6]
 22,738,757 ( 0.64%)  /tmp/b/Python-3.11.7/./Include/object.h:_PyFrame_Clear
"""


def test_rows_and_total_are_read() -> None:
    total, rows = _table(_ANNOTATED)
    assert total == 3_564_990_148
    assert [(count, obj) for count, _, obj in rows] == [
        (580_811_983, "libpython3.11.so.1.0"),
        (116_090_568, "_core.cpython-311-x86_64-linux-gnu.so"),
        (23_752_560, "libsqlite3.so.0.8.6"),
        (22_738_757, "libpython (inlined)"),
    ]
    assert rows[1][1] == "???:json_skip_string"


def test_objects_are_grouped_by_library() -> None:
    _, rows = _table(_ANNOTATED)
    assert [_library(obj) for _, _, obj in rows] == [
        "the Python interpreter",
        "msgspec",
        "SQLite",
        "the Python interpreter",
    ]
    assert _library("loop.cpython-311-x86_64-linux-gnu.so") == "uvloop"
    assert _library("python3.11") == "the Python interpreter"  # statically linked (Debian)
    assert _library("libfoo.so") == "libfoo.so"
