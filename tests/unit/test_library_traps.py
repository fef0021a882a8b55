"""Guards for library behaviour we work around (docs/architecture.md, "Library traps")."""

import asyncio


def test_the_faststream_batch_pull_loop_survives_the_timeout_nats_py_raises() -> None:
    from faststream.nats.subscriber.usecases import stream_pull_subscriber

    import infra.consumers  # noqa: F401 - installs the fix

    assert issubclass(asyncio.TimeoutError, stream_pull_subscriber.TimeoutError)


def test_the_event_store_keeps_database_functions_off() -> None:
    from infra.eventstore import application_env

    env = application_env("postgresql://postgres@localhost/x")
    assert env["POSTGRES_ENABLE_DB_FUNCTIONS"] == "no"
    assert env["POSTGRES_PASSWORD"]  # eventsourcing refuses an empty one, even under trust
