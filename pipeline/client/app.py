"""The client's commands (Typer): `pipeline login`, `pipeline logout` and `pipeline jobs
create|start|list|show|watch|cancel|pause|resume|logs|download|share|share-link|revoke-link` (a job from
a configuration template, FR5.2.2; sharing, FR8.1.2). Each is one or two API calls; `--json`
prints the API's answer as JSON. Exit codes (docs/operations.md, "Jobs from the terminal"):

    0  done (watch: the job succeeded)      4  the API refused (the reason is printed)
    1  watch: the job failed                5  watch: the job was paused
    2  usage: bad arguments, not signed in  6  the API cannot be reached or failed (5xx)
    3  watch: the job was cancelled         130 interrupted (Ctrl-C)"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from pipeline.client import config
from pipeline.client.api import Api, ApiError, UnreachableError
from pipeline.client.watch import duration, money, watch

OK, USAGE, REFUSED, UNREACHABLE, INTERRUPTED = 0, 2, 4, 6, 130  # watch's own: pipeline/client/watch.py

app = typer.Typer(name="pipeline", add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="LoRA Pipeline from the terminal, through the web API (an API token signs you in).")
jobs = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                   help="Training jobs: create, start, list, show, watch, cancel, pause, resume, logs, download,"
                        " share, share-link, revoke-link.")
app.add_typer(jobs, name="jobs")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # one line per message, for scripts and logs
AsJson = Annotated[bool, typer.Option("--json", help="print the API's answer as JSON")]
JobId = Annotated[str, typer.Argument(metavar="JOB_ID", help="the job's id (as `pipeline jobs list` shows it)")]


class Preset(StrEnum):
    conservative = "conservative"
    balanced = "balanced"
    aggressive = "aggressive"


class GpuTier(StrEnum):
    spot = "spot"
    on_demand = "on_demand"


class Visibility(StrEnum):
    private = "private"
    team = "team"
    public = "public"


class Artefact(StrEnum):
    job = "job"
    report = "report"
    package = "package"


class Reason(StrEnum):
    loss_not_decreasing = "loss_not_decreasing"
    too_expensive = "too_expensive"
    wrong_configuration = "wrong_configuration"
    testing = "testing"
    other = "other"


def run(argv: list[str]) -> int:
    """Runs one client command; returns its exit code."""
    try:
        app(args=argv, prog_name="pipeline", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else USAGE)
    return OK


# --- plumbing ---------------------------------------------------------------------------------------

def print_json(value: Any, indent: int | None = 2) -> None:
    """JSON on stdout as is (never wrapped or coloured), for scripts."""
    print(json.dumps(value, default=str, indent=indent, ensure_ascii=False), flush=True)


def stop(code: int, message: str, as_json: bool, status: int | None = None) -> NoReturn:
    if as_json:
        print_json({"error": {"status": status, "detail": message}})
    else:
        err.print(f"[red]pipeline: error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def connected(as_json: bool) -> Iterator[Api]:
    """The API with the saved or given credentials; its refusals as exit codes."""
    try:
        credentials = config.load()
    except config.NotConfiguredError as exc:
        stop(USAGE, str(exc), as_json)
    api = Api(credentials)
    try:
        yield api
    except ApiError as exc:
        if exc.status == 401:
            stop(REFUSED, f"{exc.detail}: the token was refused (revoked or expired?); run `pipeline login`",
                 as_json, 401)
        stop(UNREACHABLE if exc.status >= 500 else REFUSED, exc.detail, as_json, exc.status)
    except UnreachableError as exc:
        stop(UNREACHABLE, str(exc), as_json)
    except KeyboardInterrupt:
        raise typer.Exit(INTERRUPTED) from None
    finally:
        api.close()


def job_id(value: str, as_json: bool) -> str:
    try:
        return str(UUID(value.strip()))
    except ValueError:
        stop(USAGE, f"JOB_ID: {value!r} is not a job id (a UUID, as `pipeline jobs list` shows it)", as_json)


def emit(as_json: bool, answer: Any, text: str | Callable[[], None]) -> None:
    if as_json:
        print_json(answer)
    elif callable(text):
        text()
    else:
        out.print(text, highlight=False, soft_wrap=True)


STATUS_STYLES = {"completed": "green", "failed": "red", "cancelled": "yellow", "paused": "yellow",
                 "pausing": "yellow", "interrupted": "yellow", "recovering": "yellow", "training": "cyan"}


def styled(status: str) -> str:
    style = STATUS_STYLES.get(status)
    label = status.replace("_", " ")
    return f"[{style}]{label}[/{style}]" if style else label


# --- sign-in ----------------------------------------------------------------------------------------

@app.command()
def login(url: Annotated[str | None, typer.Option(help="the web API's address, e.g. http://127.0.0.1:8000")] = None,
          token: Annotated[str | None, typer.Option(help="an API token (`pipeline users token NAME`); asked"
                                                         " for, hidden, when not given")] = None,
          as_json: AsJson = False) -> None:
    """Checks the address and token against the API, then keeps them in your config directory (0600)."""
    url = (url or typer.prompt("API address", default="http://127.0.0.1:8000")).rstrip("/")
    token = token or typer.prompt("API token", hide_input=True)
    if not url.startswith(("http://", "https://")):
        stop(USAGE, f"--url: an http:// or https:// address (got {url!r})", as_json)
    with connected_to(url, token, as_json) as api:
        api.get("/api/jobs", per_page=1)
    path = config.save(url, token)
    emit(as_json, {"url": url, "saved_to": str(path)}, f"Signed in to {url}; saved in {path} (readable by you only)")


@contextmanager
def connected_to(url: str, token: str, as_json: bool) -> Iterator[Api]:
    api = Api(config.Credentials(url, token, "arguments"))
    try:
        yield api
    except ApiError as exc:
        stop(REFUSED, f"{url} refused the token: {exc.detail}" if exc.status == 401 else exc.detail, as_json,
             exc.status)
    except UnreachableError as exc:
        stop(UNREACHABLE, str(exc), as_json)
    finally:
        api.close()


@app.command()
def logout(as_json: AsJson = False) -> None:
    """Forgets the saved address and token."""
    forgotten = config.forget()
    emit(as_json, {"forgotten": forgotten}, "Signed out" if forgotten else "Nothing was saved")


# --- jobs -------------------------------------------------------------------------------------------

@jobs.command()
def create(file: Annotated[str, typer.Option("--file", "-f", help="a catalogued training file's id, or a file"
                                                                  " to upload first")],
           name: Annotated[str | None, typer.Option(help="3-100 characters (default: made from the file)")] = None,
           template: Annotated[str | None, typer.Option(help="start from a configuration template: its id or"
                                                              " its name (its preset, GPU tier and settings)")]
           = None,
           preset: Annotated[Preset | None, typer.Option(help="default: the template's, else by the file's"
                                                              " size")] = None,
           gpu_tier: Annotated[GpuTier | None, typer.Option("--gpu-tier", help="default: the template's, else"
                                                                              " spot")] = None,
           description: Annotated[str | None, typer.Option()] = None,
           tag: Annotated[list[str] | None, typer.Option(help="repeat for several")] = None,
           client: Annotated[str | None, typer.Option()] = None,
           project: Annotated[str | None, typer.Option()] = None,
           notes: Annotated[str | None, typer.Option()] = None,
           start: Annotated[bool, typer.Option("--start/--no-start", help="queue it at once (reserves its"
                                                                          " estimated maximum)")] = True,
           override_justification: Annotated[str | None, typer.Option(help="a manager's reason to start past"
                                                                           " the budget")] = None,
           as_json: AsJson = False) -> None:
    """Creates a job from a training file (and a template's configuration) and, by default, starts it."""
    with connected(as_json) as api:
        chosen = template_of(api, template, as_json) if template else None
        file_id = training_file(api, file, as_json)
        body = {"training_file_id": file_id, "name": name, "preset": preset.value if preset else None,
                "gpu_tier": gpu_tier.value if gpu_tier else None, "description": description, "tags": tag or [],
                "client": client, "project": project, "notes": notes, "start": start,
                "override_justification": override_justification}
        path = f"/api/templates/{chosen['id']}/jobs" if chosen else "/api/jobs"
        made = api.post(path, {k: v for k, v in body.items() if v is not None})
    warnings = "".join(f"\n[yellow]{w}[/yellow]" for w in made.get("warnings") or [])
    source = f" from template {chosen['name']}" if chosen else ""
    emit(as_json, made, f"Created job {made['id']}{source} ({'queued' if made['started'] else 'not started'})"
                        f"{warnings}")


def template_of(api: Api, given: str, as_json: bool) -> dict[str, Any]:
    """The template `given` names: by id, or by its name (any case) among those you may use."""
    try:
        return dict(api.get(f"/api/templates/{UUID(given.strip())}"))
    except ValueError:
        pass
    usable = api.get("/api/templates")
    found = [t for t in usable if t["name"].casefold() == " ".join(given.split()).casefold()]
    if len(found) > 1:
        stop(USAGE, f"--template: {len(found)} templates are named {given!r}; give one's id: "
                    + ", ".join(f"{t['id']} (by {t['created_by']})" for t in found), as_json)
    if not found:
        names = ", ".join(sorted(t["name"] for t in usable)) or "none yet"
        stop(REFUSED, f"--template: no template named {given!r} that you may use (yours and the team's: {names})",
             as_json, 404)
    return dict(found[0])


def training_file(api: Api, given: str, as_json: bool) -> str:
    """The id of `given`: a catalogued file's id as is, or a path uploaded (and validated) first."""
    try:
        return str(UUID(given))
    except ValueError:
        pass
    path = Path(given)
    if not path.is_file():
        stop(USAGE, f"--file: {given!r} is neither a training file's id nor a file here", as_json)
    with path.open("rb") as handle:
        added = api.request("POST", "/api/files", files={"file": (path.name, handle)})
    if added["status"] != "active":
        problems = "; ".join(f"{p['place']}: {p['message']}" for p in added["problems"][:5])
        stop(REFUSED, f"{path.name} is not a valid training file ({added['problem_count']} problems): {problems}",
             as_json, 400)
    if not as_json:
        err.print(f"Training file {added['name']} ({added['conversation_count']} conversations): {added['id']}",
                  highlight=False)
    return str(added["id"])


@jobs.command("start")
def start_job(job: JobId, override_justification: Annotated[str | None, typer.Option()] = None,
              as_json: AsJson = False) -> None:
    """Starts a job created with --no-start (reserves its estimated maximum on the month's budget)."""
    jid = job_id(job, as_json)
    with connected(as_json) as api:
        params = {"override_justification": override_justification} if override_justification else {}
        answer = api.post(f"/api/jobs/{jid}/start", params=params)
    emit(as_json, answer, f"Job {answer['id']} queued")


@jobs.command("list")
def list_jobs(status: Annotated[list[str] | None, typer.Option(help="repeat for several; or active, waiting")] = None,
              search: Annotated[str | None, typer.Option(help="words in the name, description, tags or notes")] = None,
              limit: Annotated[int, typer.Option(min=1, max=1000)] = 50, as_json: AsJson = False) -> None:
    """Jobs, newest first."""
    with connected(as_json) as api:
        rows = api.get("/api/jobs", status=status or [], text=search, per_page=limit)

    def table() -> None:
        shown = Table(box=None, pad_edge=False)
        shown.add_column("ID", no_wrap=True, min_width=36)  # whole: it is what the other commands take
        for title in ("Name", "Status", "Progress", "Cost", "Created", "By"):
            shown.add_column(title)
        for row in rows:
            steps = f"{row['step']:,}/{row['total_steps']:,}" if row.get("total_steps") else ""
            shown.add_row(str(row["id"]), row["name"], styled(row["status"]), steps,
                          money(row.get("cost_so_far")), str(row["created_at"])[:16].replace("T", " "),
                          row["created_by"])
        out.print(shown if rows else "No jobs")

    emit(as_json, rows, table)


@jobs.command()
def show(job: JobId, as_json: AsJson = False) -> None:
    """A job's status, progress, cost and configuration."""
    jid = job_id(job, as_json)
    with connected(as_json) as api:
        detail = api.get(f"/api/jobs/{jid}/detail")

    def facts() -> None:
        row, progress, cost = detail["job"], detail["progress"], detail["cost"]
        shown = Table(show_header=False, box=None, pad_edge=False)
        shown.add_column(style="bold")
        shown.add_column()
        lines = [("Job", f"{row['name']} ({row['id']})"), ("Status", styled(row["status"])),
                 ("Progress", f"step {row['step']:,} of {row['total_steps']:,} ({float(progress['percent'] or 0):.0f}%)"
                  if row["total_steps"] else "not training yet"),
                 ("Loss", f"{row['loss']:.4f}" if row.get("loss") is not None else "—"),
                 ("Elapsed", duration(progress.get("elapsed_seconds"))),
                 ("Remaining", duration(progress.get("remaining_seconds"))),
                 ("Cost so far", f"{money(cost.get('current_spend'))} of an estimated"
                                 f" {money(cost.get('estimated_cost_min'))}–{money(cost.get('estimated_cost_max'))}"),
                 ("Preset / GPU", f"{row.get('preset') or '—'} on {row.get('gpu_type') or '—'}"
                                  f" ({(row.get('gpu_tier') or '—').replace('_', '-')})"),
                 ("Interruptions", str(row.get("interruptions") or 0)),
                 ("Created", f"{str(row['created_at'])[:16].replace('T', ' ')} by {row['created_by']}")]
        if row.get("failure_message"):
            lines.append(("Failure", f"[red]{row['failure_type']}: {row['failure_message']}[/red]"))
        if row.get("cancellation"):
            lines.append(("Cancelled", f"by {row['cancellation']['actor']}: {row['cancellation']['reason']}"))
        for label, value in lines:
            shown.add_row(label, value)
        out.print(shown)

    emit(as_json, detail, facts)


@jobs.command("watch")
def watch_job(job: JobId, as_json: AsJson = False) -> None:
    """Follows a job live (step, loss, ETA, cost) until it ends or pauses; the exit code says how it ended:
    0 succeeded, 1 failed, 3 cancelled, 5 paused."""
    jid = job_id(job, as_json)
    with connected(as_json) as api:
        code, seen = watch(api, jid, out, as_json)
    final = {"completed": "[green]✓ Completed[/green]", "failed": f"[red]✗ Failed[/red]: {seen.failure or ''}",
             "cancelled": "[yellow]Cancelled[/yellow]",
             "paused": f"[yellow]Paused[/yellow] at step {seen.step:,}: `pipeline jobs resume {seen.id}` continues it"}
    if as_json:
        print_json({"event": "end", "status": seen.status, "exit_code": code, "step": seen.step, "cost": seen.cost,
                    "failure": seen.failure}, indent=None)
    else:
        out.print(f"{final.get(seen.status, seen.status)} · step {seen.step:,} · cost {money(seen.cost)}",
                  highlight=False)
    raise typer.Exit(code)


@jobs.command()
def cancel(job: JobId, reason: Annotated[Reason, typer.Option()] = Reason.other,
           notes: Annotated[str, typer.Option()] = "", as_json: AsJson = False) -> None:
    """Cancels a job (its pod is stopped, its spend settled)."""
    jid = job_id(job, as_json)
    with connected(as_json) as api:
        answer = api.post(f"/api/jobs/{jid}/cancel", {"reason": reason.value, "notes": notes})
    emit(as_json, answer, f"Job {answer['id']} cancelled")


@jobs.command()
def pause(job: JobId, as_json: AsJson = False) -> None:
    """Pauses a training job: its pod saves a checkpoint at the next step and stops; nothing is spent while paused."""
    jid = job_id(job, as_json)
    with connected(as_json) as api:
        answer = api.post(f"/api/jobs/{jid}/pause")
    emit(as_json, answer, f"Job {answer['id']} is {answer['status']}: its pod saves a checkpoint and stops")


@jobs.command()
def resume(job: JobId, as_json: AsJson = False) -> None:
    """Queues a paused job again; its next pod continues from its checkpoint."""
    jid = job_id(job, as_json)
    with connected(as_json) as api:
        answer = api.post(f"/api/jobs/{jid}/resume")
    emit(as_json, answer, f"Job {answer['id']} is {answer['status']} again")


@jobs.command()
def logs(job: JobId, category: Annotated[str | None, typer.Option(help="status, metrics, warning or error")] = None,
         search: Annotated[str | None, typer.Option(help="a word the events must contain")] = None,
         tail: Annotated[int | None, typer.Option(min=1, help="only the last N events")] = None,
         as_json: AsJson = False) -> None:
    """The job's event log, oldest first."""
    jid = job_id(job, as_json)
    with connected(as_json) as api:
        events = api.get(f"/jobs/{jid}/event-log.json", category=category, q=search)
    events = events[-tail:] if tail else events
    colours = {"error": "red", "warning": "yellow", "metrics": "dim"}

    def lines() -> None:
        for e in events:
            colour = colours.get(e["event_type"], "default")
            actor = f" ({e['actor']})" if e.get("actor") else ""
            out.print(f"{e['timestamp'][:19].replace('T', ' ')} [{colour}]{e['event_type']:<8}[/{colour}]"
                      f" {e['message']}{actor}", highlight=False, markup=True)

    emit(as_json, events, lines)


@jobs.command()
def download(job: JobId, output: Annotated[Path | None, typer.Option("--output", "-o", help="the file to write"
                                                                                            " (default: its own"
                                                                                            " name, here)")] = None,
             package: Annotated[bool, typer.Option(help="the deployment package (.zip) instead of the adapter"
                                                        " (.tar)")] = False,
             as_json: AsJson = False) -> None:
    """Downloads a completed job's adapter (or its deployment package)."""
    what = "deployment-package" if package else "adapter"
    jid = job_id(job, as_json)
    with connected(as_json) as api:
        path, size = api.download(f"/jobs/{jid}/{what}", output, Path.cwd())
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    emit(as_json, {"path": str(path), "bytes": size, "sha256": digest.hexdigest()},
         f"Saved {path} ({size:,} bytes, sha256 {digest.hexdigest()})")


# --- sharing (FR8.1.2) ----------------------------------------------------------------------------

SHARING_WORDS = {"private": "only you (its creator), managers and admins can open it",
                 "team": "everyone signed in can open it",
                 "public": "anyone with its link can see its configuration, progress and results without signing"
                           " in (never its costs, notes, training data or downloads)"}


def sharing_text(sharing: dict[str, Any]) -> Callable[[], None]:
    def text() -> None:
        visibility = sharing["visibility"]
        out.print(f"Visibility: [bold]{visibility}[/bold]: {SHARING_WORDS.get(visibility, '')}", highlight=False,
                  soft_wrap=True)
        out.print(f"Link: {sharing['link']}", highlight=False, soft_wrap=True)
        for link in sharing.get("links") or []:
            out.print(f"Share link {link['link_id']}: {link['purpose']} by {link['shared_by']},"
                      f" expires {link['expires_at'][:16].replace('T', ' ')} UTC", highlight=False, soft_wrap=True)

    return text


@jobs.command()
def share(job: JobId,
          private: Annotated[bool, typer.Option("--private", help="only you, managers and admins (the default)")]
          = False,
          team: Annotated[bool, typer.Option("--team", help="everyone signed in")] = False,
          public: Annotated[bool, typer.Option("--public", help="anyone with the link, without signing in")] = False,
          as_json: AsJson = False) -> None:
    """Shows who can see a job, its link and its share links; --private, --team or --public changes it."""
    jid = job_id(job, as_json)
    chosen = [v for v, on in ((Visibility.private, private), (Visibility.team, team), (Visibility.public, public))
              if on]
    if len(chosen) > 1:
        stop(USAGE, "choose one of --private, --team and --public", as_json)
    with connected(as_json) as api:
        sharing = api.post(f"/api/jobs/{jid}/sharing", {"visibility": chosen[0].value}) if chosen else \
            api.get(f"/api/jobs/{jid}/sharing")
    emit(as_json, sharing, sharing_text(sharing))


@jobs.command("share-link")
def share_link(job: JobId,
               what: Annotated[Artefact, typer.Option("--for", help="job: make the job public and print its"
                                                                    " page's link; report: a 30-day link to its"
                                                                    " training report; package: a 48-hour link"
                                                                    " to its deployment package")] = Artefact.job,
               as_json: AsJson = False) -> None:
    """A link that opens without signing in: the job's public page, or its report or package."""
    jid = job_id(job, as_json)
    with connected(as_json) as api:
        if what is Artefact.job:
            answer = api.post(f"/api/jobs/{jid}/sharing", {"visibility": Visibility.public.value})
            text = (f"{answer['link']}\nPublic: {SHARING_WORDS['public']}. `pipeline jobs share {jid} --private`"
                    " withdraws it.")
        else:
            answer = api.post(f"/api/jobs/{jid}/share-links", {"purpose": what.value})
            text = (f"{answer['url']}\nExpires {answer['expires_at'][:16].replace('T', ' ')} UTC;"
                    f" `pipeline jobs revoke-link {jid} {answer['link_id']}` withdraws it.")
    emit(as_json, answer, text)


@jobs.command("revoke-link")
def revoke_link(job: JobId,
                link: Annotated[str | None, typer.Argument(metavar="LINK_ID", help="the share link's id (as"
                                                                                     " `pipeline jobs share` lists"
                                                                                     " it)")] = None,
                every: Annotated[bool, typer.Option("--all", help="every report and package link, and the public"
                                                                  " page (the job becomes private)")] = False,
                as_json: AsJson = False) -> None:
    """Withdraws share links at once: one by its id, or --all."""
    jid = job_id(job, as_json)
    if (link is None) == (not every):
        stop(USAGE, "give either a LINK_ID (`pipeline jobs share JOB_ID` lists them) or --all", as_json)
    if link is not None:
        try:
            link = str(UUID(link.strip()))
        except ValueError:
            stop(USAGE, f"LINK_ID: {link!r} is not a share link's id (`pipeline jobs share {jid}` lists them)",
                 as_json)
    with connected(as_json) as api:
        if link is not None:
            answer = api.post(f"/api/jobs/{jid}/share-links/{link}/revoke")
            done = f"Share link {link} revoked: it no longer opens anything."
        else:
            answer = api.post(f"/api/jobs/{jid}/share-links/revoke-all")
            if answer["visibility"] == Visibility.public.value:
                answer = api.post(f"/api/jobs/{jid}/sharing", {"visibility": Visibility.private.value})
            done = "Every share link revoked; the job is not public."
    def text() -> None:
        out.print(done, highlight=False)
        sharing_text(answer)()

    emit(as_json, answer, text)


def main() -> None:  # pragma: no cover - `python -m pipeline.client.app`
    sys.exit(run(sys.argv[1:]))
