"""`pipeline jobs watch`: follows the job page's live stream (`/jobs/{id}/events-stream`, the same
Server-Sent Events the browser draws its chart from) and shows a progress bar with the step, the
loss, the time left and the spend; it reconnects where it left off when the stream ends or drops.
Ends with the job (or its pause), with an exit code that says how it ended."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn

from pipeline.client.api import Api, ApiError, UnreachableError

ENDED = {"completed": 0, "failed": 1, "cancelled": 3}
PAUSED = 5
EXIT_CODES = ENDED | {"paused": PAUSED}
RECONNECTS = 5            # the stream dropped this many times in a row: the API is gone
READ_MODEL_WAIT_S = 15.0  # a job just created may take a moment to reach the read model


@dataclass
class JobProgress:
    id: str
    name: str
    status: str
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    remaining_seconds: float | None = None
    cost: str | None = None
    failure: str | None = None

    def take_facts(self, facts: dict[str, Any]) -> None:
        self.status = facts.get("status") or self.status
        self.step = max(self.step, int(facts.get("step") or 0))
        self.total_steps = int(facts.get("total_steps") or self.total_steps)
        self.loss = facts["loss"] if facts.get("loss") is not None else self.loss
        remaining = facts.get("remaining_seconds")
        self.remaining_seconds = None if remaining is None else float(remaining)
        self.cost = str(facts["cost"]) if facts.get("cost") is not None else self.cost

    def take_points(self, points: dict[str, Any]) -> None:
        self.step = max(self.step, int(points.get("last_step") or 0))
        losses = [value for value in points.get("loss") or [] if value is not None]
        if losses:
            self.loss = losses[-1]


def duration(seconds: float | str | None) -> str:
    if seconds is None:
        return "—"
    whole = int(float(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def money(amount: str | None) -> str:
    return f"${float(amount):,.2f}" if amount else "$0.00"


class View:
    """How progress is shown: a live bar on a terminal, a line now and then otherwise, JSON lines with --json."""

    def __init__(self, console: Console, as_json: bool) -> None:
        self.console, self.as_json = console, as_json
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.last_line = (0.0, "")

    def __enter__(self) -> View:
        if not self.as_json and self.console.is_terminal:
            self.bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                                TextColumn("step {task.completed:,.0f}/{task.fields[steps]}"),
                                TextColumn("loss {task.fields[loss]}"), TextColumn("ETA {task.fields[eta]}"),
                                TextColumn("{task.fields[cost]}"), console=self.console, refresh_per_second=8)
            self.bar.start()
            self.task = self.bar.add_task("", total=None, steps="?", loss="—", eta="—", cost="$0.00")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def show(self, job: JobProgress) -> None:
        loss = f"{job.loss:.4f}" if job.loss is not None else "—"
        if self.as_json:  # one JSON object per line
            print(json.dumps({"event": "progress", **asdict(job)}), flush=True)
        elif self.bar is not None and self.task is not None:
            self.bar.update(self.task, description=f"{job.name} · {job.status.replace('_', ' ')}",
                            completed=job.step, total=job.total_steps or None, loss=loss,
                            eta=duration(job.remaining_seconds), cost=money(job.cost),
                            steps=f"{job.total_steps:,}" if job.total_steps else "?")
        else:
            line = (f"{job.status} step {job.step}/{job.total_steps or '?'} loss {loss}"
                    f" ETA {duration(job.remaining_seconds)} cost {money(job.cost)}")
            at, shown = self.last_line
            if line.split(" step")[0] != shown.split(" step")[0] or time.monotonic() - at >= 10:
                self.console.print(line, highlight=False)
                self.last_line = (time.monotonic(), line)


def watch(api: Api, job_id: str, console: Console, as_json: bool) -> tuple[int, JobProgress]:
    """Follows the job until it ends or pauses; (exit code, what it was last)."""
    detail = first_detail(api, job_id)
    job = JobProgress(job_id, detail["job"]["name"], detail["job"]["status"])
    job.take_facts(facts_of(detail))
    with View(console, as_json) as view:
        view.show(job)
        if job.status not in EXIT_CODES:
            follow(api, job, view.show)
    if job.status in ENDED:
        final = api.get(f"/api/jobs/{job_id}/detail")
        job.take_facts(facts_of(final))
        job.failure = final["job"].get("failure_message")
    return EXIT_CODES.get(job.status, 0), job


def follow(api: Api, job: JobProgress, show: Callable[[JobProgress], None]) -> None:
    last_id: str | None = None
    drops = 0
    while True:
        try:
            for event in api.stream(f"/jobs/{job.id}/events-stream", last_event_id=last_id):
                drops = 0
                if event.event == "points":
                    job.take_points(json.loads(event.data))
                    last_id = event.id or last_id
                elif event.event == "cards":
                    job.take_facts(json.loads(event.data).get("facts") or {})
                elif event.event == "end":
                    job.status = api.get(f"/api/jobs/{job.id}")["status"]
                show(job)
                if job.status in EXIT_CODES:
                    return
        except UnreachableError:
            drops += 1
            if drops >= RECONNECTS:
                raise
            time.sleep(min(2.0 * drops, 10.0))
        # the stream ended on its own (its lifetime): connect again from the last step received


def first_detail(api: Api, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + READ_MODEL_WAIT_S
    while True:
        try:
            detail: dict[str, Any] = api.get(f"/api/jobs/{job_id}/detail")
            return detail
        except ApiError as exc:
            if exc.status != 404 or time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def facts_of(detail: dict[str, Any]) -> dict[str, Any]:
    """The stream's `facts` from the detail API's answer (the same figures)."""
    job, progress, cost = detail["job"], detail["progress"], detail["cost"]
    return {"status": job["status"], "step": job["step"], "total_steps": job["total_steps"], "loss": job["loss"],
            "remaining_seconds": progress.get("remaining_seconds"), "cost": cost.get("current_spend")}
