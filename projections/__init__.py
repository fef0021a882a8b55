"""Read models in PostgreSQL, built from domain events by one code path, live or rebuilt."""
