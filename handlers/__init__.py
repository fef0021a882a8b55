"""Reactors on EVENTS and TELEMETRY: provisioning, queue and recovery, telemetry milestones, pod
providers and notifications."""
