"""The pure dialogue engine: no I/O, no clock, no telemetry."""
