"""Runtime of LoRA Pipeline: settings, embedded servers, event store, bus, relay, CLI."""
