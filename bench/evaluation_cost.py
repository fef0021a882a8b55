"""What the evaluation stage adds to a job (issue #18): measured on this machine's CPU, then projected
for Llama-3-70B on an H100 from the cost model. Target: the evaluation adds ≤ 10 % to a job's cost
at the spec's suite sizes.

    python bench/evaluation_cost.py [--conversations 60] [--epochs 1]

Measured: the real agent (`python -m gpu_agent`, tiny model, CPU) trains on the first N
conversations of the shipped sample and evaluates the held-out 20 % and the shipped 100-question
knowledge suite, as a job does; the stage telemetry's timestamps give the training time (from
`training` to `finalization`) and the evaluation time (from `evaluating` to `completed`). A CPU run
trains a few steps on a few dozen conversations while the knowledge suite keeps its full size (100
questions × 4 choices × 2 models = 800 forward passes), so here the evaluation takes several times
the training: the measured share says how the stage behaves on this machine, not what a real job
pays. A real job trains 1,567 pairs for 3 epochs: the projection below is the figure to compare with
the target.

Projected: domain/quality/cost.py's evaluation time (the held-out conversations and 200 questions,
FR6.3.2's upper size, each scored by both models, a forward pass a third of a training step) against
the cost model's training estimate for FR1.2.1's worked example (1,567 pairs, 3 epochs), per preset,
at the H100's on-demand rate."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.cost_model import estimate_cost  # noqa: E402
from domain.gpu import PricingTier, gpu_option  # noqa: E402
from domain.presets import preset_named  # noqa: E402
from domain.quality.cost import evaluation_hours  # noqa: E402
from infra.embedded import EmbeddedNats  # noqa: E402
from tests.agent_helpers import (  # noqa: E402
    agent_env,
    declare_streams,
    of_kind,
    small_training_file,
    spec,
    start_agent,
    telemetry,
    upload,
)

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "samples" / "suites" / "financial-knowledge.jsonl"
TARGET = Decimal("0.10")


def measure(conversations: int, epochs: int, work: Path) -> tuple[float, float]:
    """(training seconds, evaluation seconds) of one real agent run on the CPU."""
    server = EmbeddedNats(work / "state")
    url = server.start()
    try:
        declare_streams(url)
        data = upload(url, small_training_file(conversations), work)
        knowledge = upload(url, KNOWLEDGE.read_bytes(), work, KNOWLEDGE.name)
        job_id = str(uuid.uuid4())
        job_spec = spec(data, checkpoint_every=1000, evaluation={"knowledge": knowledge.as_dict()},
                        hyperparameters=spec(data)["hyperparameters"] | {"num_train_epochs": epochs})
        env = agent_env(job_id, url, job_spec, work / "pod")
        env.update({"AGENT_THREADS": str(os.cpu_count() or 1), "OMP_NUM_THREADS": str(os.cpu_count() or 1)})
        process = start_agent(env, work / "agent.log")
        if process.wait(timeout=3600) != 0:
            raise SystemExit(f"the agent failed: see {work / 'agent.log'}\n"
                             + (work / "agent.log").read_text()[-3000:])
        messages = telemetry(url, job_id)
    finally:
        server.stop()
    entered = {m.data["stage"]: datetime.fromisoformat(m.at) for m in messages if m.kind == "stage"}
    (completed,) = [datetime.fromisoformat(m.at) for m in messages if m.kind == "completed"]
    if "evaluating" not in entered or not of_kind(messages, "completed"):
        raise SystemExit(f"no evaluating stage in the run's telemetry: stages {sorted(entered)}")
    training = (entered["finalization"] - entered["training"]).total_seconds()
    evaluation = (completed - entered["evaluating"]).total_seconds()
    return training, evaluation


def projection() -> list[tuple[str, Decimal, Decimal, Decimal]]:
    """Per preset: (name, training hours, evaluation hours, evaluation's share of the job's cost)."""
    gpu = gpu_option(PricingTier.ON_DEMAND)
    rows = []
    for name in ("conservative", "balanced", "aggressive"):
        training = estimate_cost(preset_named(name), 1567, gpu).duration_hours
        scoring = evaluation_hours(name, 1567, 200)
        rows.append((name, training, scoring, scoring / (training + scoring)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=60, help="of the shipped sample (held-out: 20 %%)")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        training, evaluation = measure(args.conversations, args.epochs, Path(tmp))
    print(f"Measured on this CPU (tiny model, {args.conversations} conversations, {args.epochs} epoch(s), "
          f"100 knowledge questions):")
    print(f"  training {training:.1f} s, evaluation {evaluation:.1f} s: "
          f"evaluation = {evaluation / training:.1%} of training time (a tiny run against full-size suites)")
    gpu = gpu_option(PricingTier.ON_DEMAND)
    print(f"\nProjected for Llama-3-70B on {gpu.gpu_type} at ${gpu.hourly_rate}/h (1,567 pairs, 3 epochs, "
          f"313 held-out conversations and 200 questions, both models):")
    print(f"  {'preset':<13} {'training h':>10} {'evaluation h':>12} {'evaluation $':>12} {'share of job':>12}")
    worst = Decimal(0)
    for name, hours, scoring, share in projection():
        worst = max(worst, share)
        print(f"  {name:<13} {hours:>10.2f} {scoring:>12.2f} {scoring * gpu.hourly_rate:>12.2f} {share:>12.1%}")
    verdict = "PASS" if worst <= TARGET else "FAIL"
    print(f"\nTarget: the evaluation adds ≤ {TARGET:.0%} to a job's cost; worst preset {worst:.1%}: {verdict}")


if __name__ == "__main__":
    main()
