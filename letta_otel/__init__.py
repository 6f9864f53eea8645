"""letta-otel: Letta agent activity as OpenTelemetry GenAI spans."""

__version__ = "0.1.0"
