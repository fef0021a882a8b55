"""The roof: the command line, the supervisor of `pipeline up` and the worker entry points — the
composition root that builds every adapter from settings."""
