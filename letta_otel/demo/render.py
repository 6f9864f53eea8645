"""Pure: received spans and metrics → the text ``letta-otel demo`` prints.

A trace is a tree (parents before children, siblings by start time), one line per span:
name, kind, duration and the few attributes that tell what happened. A failed span gets
a second line with its status, ``error.type`` and message. Metrics are listed with their
cumulative totals per status, token type or operation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from letta_otel.demo.received import Metric, Point, Span

# Which attributes a line shows, by the span's operation (its name's first word).
KEY_ATTRIBUTES: Mapping[str, tuple[str, ...]] = {
    "invoke_agent": ("letta.run.status", "letta.run.stop_reason"),
    "agent_step": ("letta.step.status", "letta.step.stop_reason", "letta.provider_trace.missing"),
    "chat": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.response.finish_reasons",
    ),
    "execute_tool": ("gen_ai.tool.call.id", "letta.tool.status"),
}
# How each metric is broken down; others by whatever attribute differs between points.
BREAKDOWN: Mapping[str, str] = {
    "letta.steps": "letta.step.status",
    "letta.runs": "letta.run.status",
    "letta.step.duration": "letta.step.status",
    "letta.feedback": "letta.feedback",
    "gen_ai.client.token.usage": "gen_ai.token.type",
    "gen_ai.client.operation.duration": "gen_ai.operation.name",
}
MAX_VALUE = 20
MAX_MESSAGE = 90
MAX_NAME_COLUMN = 44


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_value(value: Any, limit: int = MAX_VALUE) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ",".join(format_value(v, limit) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _short(str(value), limit)


def format_duration(ns: int) -> str:
    ms = max(ns, 0) / 1e6
    if ms < 1:
        return f"{ms:.1f} ms"
    if ms < 10_000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.1f} s"


def _operation(span: Span) -> str:
    return str(span.attributes.get("gen_ai.operation.name") or span.name.split(" ", 1)[0])


def _attributes(span: Span) -> str:
    keys = KEY_ATTRIBUTES.get(_operation(span), ())
    return "  ".join(
        f"{key}={format_value(span.attributes[key])}"
        for key in keys
        if span.attributes.get(key) not in (None, "", ())
    )


def _error(span: Span) -> str | None:
    if span.status_code != "ERROR":
        return None
    parts = ["status=ERROR"]
    if "error.type" in span.attributes:
        parts.append(f"error.type={format_value(span.attributes['error.type'])}")
    if span.status_message:
        message = " ".join(span.status_message.split())
        parts.append(f'"{_short(message, MAX_MESSAGE)}"')
    return " ".join(parts)


def _children(spans: Sequence[Span]) -> tuple[list[Span], dict[str, list[Span]]]:
    """Roots and children by parent id; a span whose parent did not arrive is a root."""
    ids = {s.span_id for s in spans}
    roots: list[Span] = []
    children: dict[str, list[Span]] = {}
    for span in spans:
        if span.parent_span_id and span.parent_span_id in ids:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    order = sorted(spans, key=lambda s: (s.start_ns, s.end_ns, s.name))
    rank = {s.span_id: i for i, s in enumerate(order)}
    roots.sort(key=lambda s: rank[s.span_id])
    for kids in children.values():
        kids.sort(key=lambda s: rank[s.span_id])
    return roots, children


def render_trace(spans: Sequence[Span], label: str = "") -> list[str]:
    """One trace: a header line, then the tree."""
    roots, children = _children(spans)
    rows: list[tuple[str, Span, str]] = []  # (tree prefix + name, span, detail prefix)

    def walk(span: Span, lead: str, branch: str, below: str) -> None:
        kids = children.get(span.span_id, [])
        rows.append((lead + branch + span.name, span, lead + below + ("│  " if kids else "   ")))
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            walk(kid, lead + below, "└─ " if last else "├─ ", "   " if last else "│  ")

    for root in roots:
        walk(root, "", "", "")
    width = min(max(len(r[0]) for r in rows), MAX_NAME_COLUMN)
    trace_id = spans[0].trace_id
    lines = [f"trace {trace_id}" + (f"  {label}" if label else "")]
    for title, span, detail in rows:
        duration = format_duration(span.end_ns - span.start_ns)
        columns = f"{_short(title, width):<{width}}  {span.kind:<8} {duration:>8}"
        attrs = _attributes(span)
        lines.append(f"{columns}  {attrs}".rstrip())
        error = _error(span)
        if error:
            lines.append(f"{detail}{error}")
    return lines


def render_traces(spans: Iterable[Span], labels: Mapping[str, str] | None = None) -> str:
    """Every trace, oldest first; ``labels`` names traces by their id."""
    by_trace: dict[str, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    ordered = sorted(by_trace.values(), key=lambda t: (min(s.start_ns for s in t), t[0].trace_id))
    blocks = ["\n".join(render_trace(t, (labels or {}).get(t[0].trace_id, ""))) for t in ordered]
    return "\n\n".join(blocks)


# --------------------------------------------------------------------------- metrics


def _latest(points: Iterable[Point]) -> list[Point]:
    """One point per attribute set, the newest: pushes are cumulative, so it is the total."""
    newest: dict[tuple[tuple[str, str], ...], Point] = {}
    for point in points:
        key = tuple(sorted((k, repr(v)) for k, v in point.attributes.items()))
        if key not in newest or point.time_ns >= newest[key].time_ns:
            newest[key] = point
    return list(newest.values())


def _breakdown(metric: Metric, points: Sequence[Point]) -> tuple[str, ...]:
    if metric.name in BREAKDOWN:
        return (BREAKDOWN[metric.name],)
    keys = sorted({k for p in points for k in p.attributes})
    varying = tuple(k for k in keys if len({repr(p.attributes.get(k)) for p in points}) > 1)
    if varying:
        return varying
    return tuple(keys) if len(keys) <= 2 else ()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _unit(metric: Metric) -> str:
    return f" {metric.unit}" if metric.unit and metric.unit != "1" else ""


def render_metric(metric: Metric) -> list[tuple[str, str]]:
    """(series, value) rows of one metric, one per value of its breakdown."""
    points = _latest(metric.points)
    keys = _breakdown(metric, points)
    groups: dict[tuple[str, ...], list[Point]] = {}
    for point in points:
        group = tuple(format_value(point.attributes.get(k, "")) for k in keys)
        groups.setdefault(group, []).append(point)
    rows = []
    for group, members in sorted(groups.items()):
        labels = ",".join(f"{k}={v}" for k, v in zip(keys, group, strict=True) if v)
        series = f"{metric.name}{{{labels}}}" if labels else metric.name
        if metric.kind in ("histogram", "exponential_histogram", "summary"):
            count = sum(p.count or 0 for p in members)
            total = sum(p.sum or 0.0 for p in members)
            rows.append((series, f"count={count} sum={_number(total)}{_unit(metric)}"))
        elif metric.kind == "sum":
            rows.append((series, _number(sum(p.value or 0.0 for p in members))))
        else:  # a gauge: the values, not their sum
            rows.append((series, " ".join(_number(p.value or 0.0) for p in members)))
    return rows


def render_metrics(metrics: Iterable[Metric]) -> str:
    """Every metric received, merged across pushes; point-in-time stamps by name only."""
    merged: dict[str, Metric] = {}
    for metric in metrics:
        seen = merged.get(metric.name)
        points = (*seen.points, *metric.points) if seen else metric.points
        merged[metric.name] = Metric(metric.name, metric.unit, metric.kind, points)
    rows: list[tuple[str, str]] = []
    stamps: list[str] = []
    for name in sorted(merged, key=lambda n: (n.startswith("letta_otel."), n)):
        metric = merged[name]
        if metric.kind == "gauge" and name.endswith("timestamp"):
            stamps.append(name)
            continue
        rows.extend(render_metric(metric))
    if not rows and not stamps:
        return "(no metrics)"
    width = max((len(s) for s, _ in rows), default=0)
    lines = [f"{series:<{width}}  {value}" for series, value in rows]
    if stamps:
        lines.append("also: " + ", ".join(stamps))
    return "\n".join(lines)
