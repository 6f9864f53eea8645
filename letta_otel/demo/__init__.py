"""``letta-otel demo``: real Letta captures → the bridge → a local OTLP receiver (or yours)."""
