"""The domain: aggregates, value objects and application services. No I/O; time is passed in."""
