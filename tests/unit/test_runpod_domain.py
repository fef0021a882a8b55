"""Issue #16's domain rules: the pre-flight memory check of a job (the spec's three presets for Llama-3-70B on
an 80 GB H100, with the figures shown; refused at creation before any pod), our ledger against the provider's
bill (the tolerance), the base model's download as its own line of the setup cost, and a price's label."""

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.applications import Pipeline
from domain.billing import BillingTolerance, Reconciliation
from domain.cost_ledger import PodLifetime, ledger
from domain.gpu import OfflinePrices, PricingTier, gpu_option, rate_label
from domain.gpu_memory import InsufficientGpuMemoryError, MemoryCheck, Verdict
from domain.gpu_memory.job_check import QLORA_FIX
from domain.presets import AGGRESSIVE, BALANCED, CONSERVATIVE
from tests.factories import T0, configured_job
from tests.unit.test_pipeline_application import register

LLAMA_70B = "meta-llama/Meta-Llama-3-70B-Instruct"
H100 = MemoryCheck(LLAMA_70B, qlora=True, gpu_memory_gb=80)


@pytest.fixture
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.mark.parametrize(("preset", "requested_gb", "adjusted_gb"), [
    (CONSERVATIVE, 486.5, 62.3), (BALANCED, 336.1, 65.7), (AGGRESSIVE, 193.8, 58.6)])
def test_the_three_presets_fit_llama_3_70b_on_an_h100_once_the_agent_adjusts_them(
        preset, requested_gb: float, adjusted_gb: float) -> None:
    verdict = H100.check(preset.as_config())  # 2,048-token rows; the agent may shorten rows if it must
    assert verdict is not None and verdict.verdict is Verdict.FIT_AFTER_ADJUSTMENT
    assert (verdict.estimate_gb, verdict.adjusted_gb, verdict.usable_gb) == (requested_gb, adjusted_gb, 72.0)
    assert verdict.message == (f"Fits after adjustment: {requested_gb:.1f} GB estimated as configured, "
                               f"{adjusted_gb:.1f} GB once the agent adjusts it, of 72.0 GB usable on the 80 GB GPU")


@pytest.mark.parametrize(("preset", "needed_gb", "longest"), [
    (CONSERVATIVE, 81.8, "6,080"), (BALANCED, 86.1, "5,312"), (AGGRESSIVE, 89.2, "4,672")])
def test_rows_of_8192_tokens_fit_no_preset_and_the_refusal_gives_the_figure_and_the_fix(
        preset, needed_gb: float, longest: str) -> None:
    with pytest.raises(InsufficientGpuMemoryError) as refused:
        H100.check(preset.as_config() | {"max_seq_length": 8192})
    assert str(refused.value) == (
        f"This configuration does not fit the 80 GB GPU: it needs about {needed_gb} GB even after the agent's "
        "adjustments (gradient checkpointing, a smaller micro-batch), of 72.0 GB usable. Try: Reduce sequence length "
        f"(if conversations are very long): {longest} tokens per row fit")
    assert refused.value.details()["preflight"]["adjusted_gb"] == needed_gb


def test_70b_in_bf16_fits_no_h100_and_the_fix_is_4_bit_loading() -> None:
    with pytest.raises(InsufficientGpuMemoryError) as refused:
        MemoryCheck(LLAMA_70B, qlora=False).check(BALANCED.as_config())
    assert "it needs about 143.0 GB" in str(refused.value) and refused.value.fixes == (QLORA_FIX,)


def test_a_model_without_a_published_shape_is_left_to_the_agents_own_guard() -> None:
    assert MemoryCheck("tiny", qlora=False).check(BALANCED.as_config()) is None
    assert MemoryCheck("mistralai/Mistral-7B-v0.3", qlora=True).judge(BALANCED.as_config()) is None


def test_a_job_that_cannot_fit_is_refused_at_creation_and_nothing_is_saved(app: Pipeline) -> None:
    file_id = register(app, conversations=200)
    with pytest.raises(InsufficientGpuMemoryError, match="does not fit the 80 GB GPU"):
        app.create_job_from_file(file_id, created_by="alice", at=T0, memory=MemoryCheck(LLAMA_70B, qlora=False))
    assert not [n for n in app.recorder.select_notifications(1, 1000) if n.topic == "TrainingJob.Created"]
    job_id = app.create_job_from_file(file_id, created_by="alice", at=T0, memory=H100)
    assert app.get_job(job_id).configuration["preset"] == "balanced"


def test_a_difference_is_flagged_past_the_larger_of_fifty_cents_and_two_percent() -> None:
    tolerance = BillingTolerance()
    assert tolerance.allowed(Decimal("10.00")) == Decimal("0.50")  # 2 % would be $0.20
    assert tolerance.allowed(Decimal("100.00")) == Decimal("2.00")
    assert not Reconciliation(Decimal("10.00"), Decimal("10.50")).flagged(tolerance)
    assert Reconciliation(Decimal("10.00"), Decimal("10.51")).flagged(tolerance)
    assert Reconciliation(Decimal("100.00"), Decimal("97.99")).flagged(tolerance)
    assert Reconciliation(Decimal("7.994"), Decimal("8.5")).describe() == \
        "Our ledger $7.99, RunPod billed $8.50, difference +$0.51"


def test_the_models_download_is_its_own_line_inside_the_setup_cost() -> None:
    pod = PodLifetime("rp-1", Decimal("3.60"), T0, training_started_at=T0 + timedelta(minutes=20),
                      stopped_at=T0 + timedelta(hours=2), download_seconds=Decimal(600))
    totals = ledger((pod,), T0 + timedelta(hours=3))
    assert totals.setup_seconds == Decimal(1200) and totals.download_seconds == Decimal(600)
    assert totals.download_cost == Decimal("0.60") and totals.setup_cost == Decimal("1.20")
    assert totals.total_cost == Decimal("7.20")  # the line is a part of setup, not an extra
    stuck = pod.with_(training_started_at=None, download_seconds=Decimal(99_999))
    assert ledger((stuck,), T0).download_seconds <= ledger((stuck,), T0).setup_seconds


def test_a_pods_download_and_bill_are_recorded_once_each() -> None:
    job = configured_job()
    job.queue(T0)
    attempt = job.start_provisioning("on_demand", T0)
    job.pod_started("rp-1", attempt, Decimal("2.39"), T0)
    job.reconcile_billing("rp-1", Decimal("1.00"), [], T0)  # still running: nothing to reconcile yet
    job.record_model_download("rp-1", attempt, LLAMA_70B, Decimal("312.5"), 141_000_000_000, False, T0)
    job.record_model_download("rp-1", attempt, LLAMA_70B, Decimal("312.5"), 141_000_000_000, False, T0)
    job.pod_stopped("rp-1", T0 + timedelta(hours=1))
    assert job.billing_pending() == ["rp-1"]
    job.reconcile_billing("rp-1", Decimal("2.40"), [], T0 + timedelta(hours=2))
    job.reconcile_billing("rp-1", Decimal("2.40"), [], T0 + timedelta(hours=3))
    kinds = [type(e).__name__ for e in job.collect_events()]
    assert kinds.count("ModelDownloaded") == 1 and kinds.count("BillingReconciled") == 1
    assert job.billed == {"rp-1": Decimal("2.40")} and job.billing_pending() == []
    assert job.pods["rp-1"].download_seconds == Decimal("312.5")


def test_a_shown_rate_says_whose_it_is() -> None:
    assert rate_label(OfflinePrices(), PricingTier.ON_DEMAND) == "Our configured rate"
    assert rate_label(None, PricingTier.SPOT) == "Our configured rate"
    assert gpu_option(PricingTier.ON_DEMAND).hourly_rate == Decimal("7.99")
