"""The README's configuration table, generated from the settings' specs."""

from __future__ import annotations

from letta_otel.config.settings import SETTING_SPECS
from letta_otel.config.sources import ENV_CONFIG
from letta_otel.config.spec import SettingSpec, toml_label

__all__ = ["settings_reference_markdown"]


def _cell(items: tuple[str, ...] | list[str]) -> str:
    return "<br>".join(f"`{item}`" for item in items) or "—"


def _markdown_row(spec: SettingSpec) -> str:
    meaning = spec.help
    if spec.secret:
        meaning += " **Secret**: no flag, never logged."
    cells = [
        f"`{spec.field}`",
        _cell(spec.env),
        _cell([toml_label(key) for key in spec.toml]),
        _cell(spec.flags),
        f"`{spec.default_text}`",
        meaning,
    ]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def settings_reference_markdown() -> str:
    """The README configuration table (between ``<!-- settings:begin/end -->``)."""
    header = [
        f"Config file: `--config PATH` or `{ENV_CONFIG}` (TOML, see "
        "`config/letta-otel.example.toml`). Precedence: flag > environment > file > "
        "backend preset > default; `OTEL_EXPORTER_OTLP_TRACES_*` beats "
        "`OTEL_EXPORTER_OTLP_*`; an empty variable counts as unset.",
        "",
        "| Setting | Env var | TOML key | Flag | Default | Meaning |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(header + [_markdown_row(spec) for spec in SETTING_SPECS]) + "\n"
