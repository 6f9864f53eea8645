"""README stays true: its configuration table is the one the code renders."""

from __future__ import annotations

import re
from pathlib import Path

from letta_otel.config import ENV_VARS, settings_reference_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", re.S)


def test_configuration_table_is_current() -> None:
    text = README.read_text()
    match = BLOCK.search(text)
    assert match, "README lost its settings markers"
    assert match.group(1).strip() == settings_reference_markdown().strip(), (
        "README configuration table is stale; regenerate it with `python -m tests.test_readme`"
    )
    for name in ENV_VARS:
        assert name in text


def test_quickstart_commands_exist() -> None:
    text = README.read_text()
    quickstart = text[text.index("## Quickstart") :]
    # The first command shown is the demo: it needs no account and no collector.
    first = re.search(r"```bash\n(.*?)\n```", quickstart, re.S)
    assert first and first.group(1).endswith(".venv/bin/letta-otel demo")
    assert "bash .ci/run" in text
    assert ".venv/bin/letta-otel run" in text
    assert (README.parent / ".ci" / "run").exists()


if __name__ == "__main__":
    body = README.read_text()
    body = BLOCK.sub(
        lambda _: (
            f"<!-- settings:begin -->\n{settings_reference_markdown().strip()}\n"
            "<!-- settings:end -->"
        ),
        body,
    )
    README.write_text(body)
