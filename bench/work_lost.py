"""Work lost per interruption, with the real GPU agent (tiny model, CPU, a private nats-server):
part 2 of bench/reaction_time.py.

SIGTERM (spot preemption): sent from outside, as LocalProvider.preempt does, once the agent's
`step` telemetry reaches a random step; the agent checkpoints at the next step boundary, reports
`interrupted` and exits 143. SIGKILL: the agent's own test fault `sigkill_at_step:N`, which kills
it at the end of step N (after the optimizer step, before Trainer's save of that step), so the last
step done is known exactly; N is spread over the checkpoint interval (just after a checkpoint, at
the next one, in between). Either way the next attempt resumes from the checkpoint the control
plane would pick (the newest one announced on TELEMETRY: the job's latest_checkpoint) and is
stopped after its first step. Steps redone = last step the interrupted attempt finished - (first
step of the resumed attempt - 1)."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from domain.values import ArtifactRef
from infra import bus
from infra.embedded import EmbeddedNats
from infra.telemetry import subject as telemetry_subject
from tests.agent_helpers import agent_env, declare_streams, small_training_file, spec, start_agent, telemetry, upload

INTERVALS = 5  # each run trains this many checkpoint intervals
AGENT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Trial:
    signal: str
    asked_step: int         # SIGTERM: sent once this step was reported; SIGKILL: the fault's step
    last_step: int          # last step the interrupted attempt finished
    resume_step: int        # the checkpoint the next attempt resumed from (0: none, from scratch)
    first_resumed_step: int
    emergency_checkpoint: bool | None  # SIGTERM: did the agent report one?
    announce_lag: int       # most steps finished between taking a checkpoint and announcing it
    steps_after_signal: int | None  # SIGTERM: steps the agent finished after the signal was sent

    @property
    def redone(self) -> int:
        return self.last_step - (self.first_resumed_step - 1)


async def _signal_at_step(url: str, job_id: str, attempt: int, process: subprocess.Popen, step: int,
                          sig: signal.Signals) -> float | None:
    """Sends `sig` once the attempt reported `step` (or any step, for 0); returns, once it exited,
    when the signal was sent (None: not sent)."""
    nc = await bus.connect(url, "bench-work-lost")
    sent: list[float] = []

    async def on_step(msg) -> None:
        data = json.loads(msg.data)
        if data["attempt"] == attempt and data["data"]["step"] >= step and not sent:
            process.send_signal(sig)
            sent.append(time.time())

    await nc.subscribe(telemetry_subject(job_id, "step"), cb=on_step)
    deadline = time.monotonic() + AGENT_TIMEOUT_S
    try:
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"agent of job {job_id} attempt {attempt} still running")
            await asyncio.sleep(0.05)
    finally:
        await nc.close()
    return sent[0] if sent else None


def _steps(url: str, job_id: str, attempt: int) -> tuple[list[int], list]:
    messages = [m for m in telemetry(url, job_id) if m.attempt == attempt]
    return [m.data["step"] for m in messages if m.kind == "step"], messages


def steps_before(messages: list, t: float) -> int:
    """The last step the agent reported finishing before wall-clock time `t` (its own clock)."""
    return max((m.data["step"] for m in messages if m.kind == "step" and datetime.fromisoformat(m.at).timestamp() <= t),
               default=0)


def announce_lag(messages: list) -> int:
    """Steps the agent finished after taking a periodic checkpoint and before announcing it
    (packing, uploading, publishing), the most over one attempt; by the agent's own clock."""
    steps = [(datetime.fromisoformat(m.at), m.data["step"]) for m in messages if m.kind == "step"]
    lags = [max((s for at, s in steps if at <= datetime.fromisoformat(m.at)), default=0) - m.data["step"]
            for m in messages if m.kind == "checkpoint"]
    return max(lags, default=0)


def one_trial(url: str, tmp: Path, job_spec: dict, kind: str, at_step: int) -> Trial:
    job_id, work = str(uuid.uuid4()), tmp / f"{kind}-{at_step}-{uuid.uuid4().hex[:6]}"
    first_spec = job_spec | ({"fault": f"sigkill_at_step:{at_step}"} if kind == "SIGKILL" else {})
    process = start_agent(agent_env(job_id, url, first_spec, work / "attempt-1", 1), work.with_suffix(".1.log"))
    sig = signal.SIGTERM if kind == "SIGTERM" else signal.SIGKILL
    signalled = asyncio.run(_signal_at_step(url, job_id, 1, process, at_step if kind == "SIGTERM" else 10**9, sig))
    expected = 143 if kind == "SIGTERM" else -9
    if process.returncode != expected:
        raise RuntimeError(f"{kind} trial: agent exited with {process.returncode}, expected {expected}; "
                           f"see {work.with_suffix('.1.log')}")
    steps, messages = _steps(url, job_id, 1)
    checkpoints = [m.data for m in messages if m.kind == "checkpoint"]
    interrupted = next((m.data for m in messages if m.kind == "interrupted"), None)
    latest = max(checkpoints, key=lambda c: c["step"], default=None)
    # SIGKILL: the fault's step, exactly; SIGTERM: the step it stopped at (or, had it found no step
    # boundary within its grace period, the last one it reported).
    last_step = at_step if kind == "SIGKILL" else (interrupted or {}).get("step") or max(steps)
    if kind == "SIGTERM" and max(steps) != last_step:
        raise RuntimeError(f"SIGTERM trial: steps reported up to {max(steps)}, interrupted at {last_step}")

    resume = ArtifactRef(**latest["checkpoint"]) if latest else None
    process = start_agent(agent_env(job_id, url, job_spec, work / "attempt-2", 2, resume), work.with_suffix(".2.log"))
    asyncio.run(_signal_at_step(url, job_id, 2, process, 0, signal.SIGKILL))
    resumed, _ = _steps(url, job_id, 2)
    if not resumed:
        raise RuntimeError(f"the resumed attempt reported no step; see {work.with_suffix('.2.log')}")
    return Trial(kind, at_step, last_step, latest["step"] if latest else 0, min(resumed),
                 interrupted.get("emergency_checkpoint") if interrupted else None, announce_lag(messages),
                 None if signalled is None else last_step - steps_before(messages, signalled))


def kill_points(runs: int, every: int, rng: random.Random) -> list[int]:
    """Spread over the phase of the checkpoint interval: just after a checkpoint, at the next one
    (Trainer has not saved it yet), in between; each in a random interval but the last."""
    offsets = [1, every, *(rng.randint(2, max(2, every - 1)) for _ in range(max(0, runs - 2)))][:runs]
    return [rng.randrange(1, INTERVALS - 1) * every + offset for offset in offsets]


def run_work_lost(tmp: Path, runs: int, every: int, seed: int | None = None) -> list[str]:
    """Runs the trials, prints their table; returns the failed targets' labels."""
    rng = random.Random(seed)
    tmp = tmp / "work-lost"
    nats = EmbeddedNats(tmp / "nats")
    nats.start()
    try:
        declare_streams(nats.url)
        ref = upload(nats.url, small_training_file(40), tmp)
        max_steps = INTERVALS * every
        job_spec = spec(ref, checkpoint_every=every, max_steps=max_steps, heartbeat_s=5.0)
        print(f"\nwork lost per interruption: GPU agent, tiny model on the CPU, checkpoint every {every} steps, "
              f"{max_steps} steps", flush=True)
        trials = []
        plan = [("SIGTERM", rng.randint(3, max_steps - every // 2 - 3)) for _ in range(runs)]
        plan += [("SIGKILL", step) for step in kill_points(runs, every, rng)]
        for kind, step in plan:
            started = time.monotonic()
            trials.append(one_trial(nats.url, tmp, job_spec, kind, step))
            t = trials[-1]
            emergency = ("" if t.emergency_checkpoint is None
                         else f" (emergency checkpoint: {t.emergency_checkpoint}, "
                              f"stopped {t.steps_after_signal} step(s) after the signal)")
            print(f"  {kind:7s} at step {t.asked_step:3d}: stopped after step {t.last_step:3d}, resumed from "
                  f"checkpoint {t.resume_step:3d}, first step again {t.first_resumed_step:3d}: {t.redone} redone"
                  + emergency
                  + f"; checkpoints announced up to {t.announce_lag} step(s) late"
                    f"  [{time.monotonic() - started:.0f} s]",
                  flush=True)
    finally:
        nats.stop()
    return print_work_lost(trials, every)


def print_work_lost(trials: list[Trial], every: int) -> list[str]:
    failed = []
    print(f"  {'':9s} {'runs':>4s} {'mean':>6s} {'max':>4s}   target")
    for kind, limit in (("SIGTERM", 0), ("SIGKILL", every)):
        redone = [t.redone for t in trials if t.signal == kind]
        if not redone:
            continue
        verdict = "PASS" if max(redone) <= limit else "FAIL"
        if verdict == "FAIL":
            failed.append(f"{kind}: up to {max(redone)} steps redone (target <= {limit})")
        print(f"  {kind:9s} {len(redone):4d} {statistics.mean(redone):6.1f} {max(redone):4d}   "
              f"<= {limit} steps redone  {verdict}")
    return failed
