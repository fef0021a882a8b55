"""The GPU agent: runs inside each pod, trains the adapter, reports on the TELEMETRY stream."""
