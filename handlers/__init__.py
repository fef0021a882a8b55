"""Reactors on EVENTS and TELEMETRY: provisioning, telemetry, (later) recovery and notifiers."""
