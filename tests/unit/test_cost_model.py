"""Cost model (FR1.2.1): duration and cost arithmetic, ranges, notices, calibration and refitting."""

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.cost_model import (
    DEFAULT_COEFFICIENTS,
    SPEC_COEFFICIENTS,
    Coefficients,
    InvalidEstimateInputError,
    PresetTiming,
    ThroughputSample,
    accuracy,
    delta_text,
    estimate_cost,
    estimate_warnings,
    insufficient_budget,
    percent_change,
    refit,
    review_warnings,
)
from domain.cost_model.estimate import MONEY_FIELDS
from domain.gpu import PricingTier, gpu_option
from domain.presets import AGGRESSIVE, BALANCED, CONSERVATIVE, PRESETS, UnknownPresetError

D = Decimal
SPOT, ON_DEMAND = gpu_option(PricingTier.SPOT), gpu_option(PricingTier.ON_DEMAND)
EXAMPLE_PAIRS = 1567  # the spec's worked example: 242 conversations, 1,567 training pairs


@pytest.mark.parametrize(("preset", "low", "high"), [
    (CONSERVATIVE, 8, 10), (BALANCED, 12, 15), (AGGRESSIVE, 18, 20),
])
def test_the_specs_worked_example_lands_inside_its_stated_duration_range(preset, low, high):
    assert low <= estimate_cost(preset, EXAMPLE_PAIRS, SPOT).duration_hours <= high


def test_the_specs_literal_coefficients_contradict_its_own_example():
    hours = estimate_cost(BALANCED, EXAMPLE_PAIRS, SPOT, coefficients=SPEC_COEFFICIENTS).duration_hours
    assert hours == D("235.05")


def test_balanced_spot_estimate_matches_the_arithmetic_done_by_hand():
    e = estimate_cost(BALANCED, EXAMPLE_PAIRS, SPOT, interruption_probability=D("0.18"))
    assert e.duration_hours == D("13.71125")  # 1567 × 3 × 10.5 s / 3600
    assert (e.duration_min_hours, e.duration_max_hours) == (D("11.6545625"), D("15.7679375"))
    assert e.base_gpu_cost == D("34.1410125")  # 13.71125 h × $2.49
    assert e.expected_interruptions == D("0.36")  # CEIL(13.71 / 8) = 2 windows × 0.18
    assert e.interruption_overhead == D("0.2241")  # 0.36 × 0.25 h × $2.49
    assert e.total_cost == D("34.3651125")
    assert (e.cost_min, e.cost_max) == (D("29.210345625"), D("39.519879375"))


def test_on_demand_has_no_interruption_overhead():
    e = estimate_cost(BALANCED, EXAMPLE_PAIRS, ON_DEMAND)
    assert e.interruption_overhead == 0
    assert e.total_cost == e.base_gpu_cost == D("109.5528875")  # 13.71125 h × $7.99


@pytest.mark.parametrize(("pairs", "windows"), [(2880, 1), (2881, 2)])
def test_interruption_windows_are_eight_hours_rounded_up(pairs, windows):
    e = estimate_cost(CONSERVATIVE, pairs, SPOT, epochs=1, interruption_probability=D("0.5"))  # 2880 pairs = 8 h
    assert e.expected_interruptions == D("0.5") * windows


def test_an_epoch_override_scales_the_duration():
    two = estimate_cost(BALANCED, EXAMPLE_PAIRS, SPOT, epochs=2).duration_hours
    assert two * 3 == estimate_cost(BALANCED, EXAMPLE_PAIRS, SPOT).duration_hours * 2


def test_each_estimate_records_its_algorithm_version_and_confidence():
    coefficients = replace(DEFAULT_COEFFICIENTS, version="fit-abc", confidence=88)
    e = estimate_cost(BALANCED, EXAMPLE_PAIRS, SPOT, coefficients=coefficients)
    assert (e.algorithm_version, e.confidence) == ("fit-abc", 88)
    assert estimate_cost(BALANCED, EXAMPLE_PAIRS, SPOT).algorithm_version == "calibrated-1"


def test_display_rounds_money_to_cents_half_even_and_keeps_the_exact_estimate():
    e = replace(estimate_cost(BALANCED, EXAMPLE_PAIRS, SPOT), total_cost=D("10.125"), cost_max=D("10.135"))
    shown = e.for_display()
    assert (shown.total_cost, shown.cost_max) == (D("10.12"), D("10.14"))
    assert shown.duration_hours == D("13.71")
    assert e.total_cost == D("10.125")


@pytest.mark.parametrize(("pairs", "epochs", "probability"), [(0, 3, D(0)), (10, 0, D(0)), (10, 3, D("1.1"))])
def test_impossible_inputs_are_refused(pairs, epochs, probability):
    with pytest.raises(InvalidEstimateInputError):
        estimate_cost(BALANCED, pairs, SPOT, epochs=epochs, interruption_probability=probability)


def test_a_job_over_100_dollars_carries_the_high_cost_warning():
    e = estimate_cost(BALANCED, EXAMPLE_PAIRS, ON_DEMAND)
    assert estimate_warnings(e) == (
        "⚠ High Cost Job: $109.55 estimated. Review configuration or consider Conservative preset.",
    )


def test_a_job_of_exactly_100_dollars_carries_no_warning():
    assert estimate_warnings(replace(estimate_cost(BALANCED, 100, SPOT), total_cost=D(100))) == ()


def test_a_run_over_24_hours_carries_the_long_run_warning():
    e = estimate_cost(AGGRESSIVE, 3000, SPOT)  # 3000 × 4 × 11 s = 36.7 h, $91.6
    assert estimate_warnings(e) == ("⚠ Long Training Run: >24 hours. Consider reducing epochs or dataset size.",)


def test_a_budget_below_the_estimates_maximum_is_insufficient():
    e = estimate_cost(BALANCED, EXAMPLE_PAIRS, SPOT)
    assert insufficient_budget(e, D("39")) == (
        "❌ Insufficient Budget: Estimated $39.52 exceeds remaining budget $39.00. "
        "Increase budget limit or adjust configuration."
    )
    assert insufficient_budget(e, D("40")) is None
    assert insufficient_budget(e, None) is None


def test_changing_the_configuration_shows_the_delta_against_the_previous_estimate():
    # The delta is between the amounts the user saw ($34.37 → $21.90), not of the exact values.
    assert delta_text(D("34.3651"), D("21.9042")) == "↓ $12.47 savings vs previous"
    assert delta_text(D("21.90"), D("34.37")) == "↑ $12.47 higher than previous estimate"
    assert delta_text(D("21.901"), D("21.899")) is None
    assert percent_change(D("40"), D("50")) == D(25)
    assert percent_change(D(0), D("50")) is None


def test_review_of_a_costly_aggressive_first_job_shows_the_fr132_warnings():
    e = estimate_cost(AGGRESSIVE, EXAMPLE_PAIRS, ON_DEMAND)
    conservative = estimate_cost(CONSERVATIVE, EXAMPLE_PAIRS, ON_DEMAND).total_cost
    warnings = review_warnings(e, conservative, remaining_budget=D("200"), previous_jobs=0)
    assert warnings[0] == (
        "⚠ High-Cost Training Run: This job will cost $153.03. Consider Conservative preset to reduce cost by 55%."
    )
    assert [w.split(":")[0] for w in warnings[1:]] == [
        "⚠ Advanced Configuration", "⚠ Limited Budget Remaining", "ℹ First Training Run",
    ]


def test_review_of_a_modest_balanced_job_by_a_returning_user_has_no_warnings():
    e = estimate_cost(BALANCED, EXAMPLE_PAIRS, SPOT)
    assert review_warnings(e, D("21.90"), remaining_budget=D("500"), previous_jobs=4) == ()


def test_review_warns_of_extended_training_beyond_20_hours():
    e = estimate_cost(AGGRESSIVE, 1700, SPOT)  # 20.8 h
    assert any(w.startswith("⚠ Extended Training Time") for w in review_warnings(e, D(0), None, 2))


def measured(preset, rate, per_pair, pair_epochs, slowness=()):
    """Completed jobs that trained `per_pair` useful tokens per pair-epoch at `rate` tokens/s (× a slowness each)."""
    slowness = slowness or [D(1)] * len(pair_epochs)
    return [ThroughputSample(preset, x, D(x) * per_pair, D(x) * per_pair / rate * k)
            for x, k in zip(pair_epochs, slowness, strict=True)]


SIZES = [1000, 2500, 4000, 6000, 9000, 12000]


def test_refit_takes_seconds_per_pair_from_the_measured_tokens_per_second():
    fitted = refit(measured("balanced", D(2000), D(400), SIZES[:5]))
    # 400 tokens a pair-epoch at 2,000 tokens/s: 0.2 s a pair-epoch, on the spec's own formula
    assert fitted.balanced == PresetTiming(D("0.2000"), tokens_per_second=D("2000.0"), jobs=5)
    assert fitted.conservative == DEFAULT_COEFFICIENTS.conservative  # no jobs: the shipped constant
    assert (fitted.confidence, fitted.sample_count) == (100, 5)
    assert fitted.version.startswith("fit-") and fitted.version == refit(measured("balanced", D(2000), D(400),
                                                                                  SIZES[:5])).version
    estimate = estimate_cost(BALANCED, EXAMPLE_PAIRS, SPOT, coefficients=fitted)
    assert estimate.duration_hours == D(EXAMPLE_PAIRS * 3) * D("0.2") / 3600  # pairs × epochs × s/pair / 3600
    assert estimate.algorithm_version == fitted.version


def test_the_rate_is_tokens_over_seconds_summed_not_a_mean_of_the_jobs_rates():
    fast_short = ThroughputSample("conservative", 1000, D(100_000), D(100))     # 1,000 tokens/s for 100 s
    slow_long = ThroughputSample("conservative", 1000, D(2_700_000), D(900))    # 3,000 tokens/s for 900 s
    fitted = refit([fast_short, slow_long], min_samples=2)
    assert fitted.conservative.tokens_per_second == D("2800.0")  # 2.8 M tokens / 1,000 s, not (1,000 + 3,000) / 2
    assert fitted.conservative.seconds_per_pair == D("0.5000")  # 1,400 tokens a pair-epoch / 2,800 tokens/s


def test_tokens_per_pair_come_from_every_preset_and_the_rate_from_the_presets_own_jobs():
    samples = measured("balanced", D(1500), D(300), SIZES[:5]) + measured("aggressive", D(900), D(600), [4000] * 3)
    fitted = refit(samples)
    per_pair = (D(300) * sum(SIZES[:5]) + D(600) * 12000) / (sum(SIZES[:5]) + 12000)
    assert fitted.balanced.seconds_per_pair == (per_pair / 1500).quantize(D("0.0001"))
    assert fitted.aggressive == DEFAULT_COEFFICIENTS.aggressive  # 3 jobs are too few for its own rate
    assert fitted.sample_count == 5  # the confidence is measured on the refitted presets' jobs


def test_slower_jobs_than_the_rate_predicts_show_in_the_confidence():
    slowness = [D("1.30"), D("0.95"), D("1.10"), D("0.90"), D("1.02"), D("1.05")]
    fitted = refit(measured("balanced", D(2000), D(400), SIZES, slowness))
    assert fitted.confidence == accuracy(fitted, measured("balanced", D(2000), D(400), SIZES, slowness))
    assert 50 <= fitted.confidence < 100


def test_with_too_few_completed_jobs_the_shipped_constants_stay():
    assert refit(measured("balanced", D(2000), D(400), SIZES[:4])) is DEFAULT_COEFFICIENTS
    assert refit([]) is DEFAULT_COEFFICIENTS
    assert refit(measured("balanced", D(2000), D(400), SIZES[:4]), min_samples=4).balanced.jobs == 4


def test_refit_rejects_samples_of_an_unknown_preset_or_without_a_measurement():
    with pytest.raises(UnknownPresetError):
        refit([ThroughputSample("turbo", 60, D(6000), D(6))])
    with pytest.raises(ValueError, match="positive"):
        ThroughputSample("balanced", 60, D(6000), D(0))


def test_coefficients_are_looked_up_by_preset_name_only():
    with pytest.raises(UnknownPresetError):
        DEFAULT_COEFFICIENTS.timing("version")


rates = st.decimals(min_value=D("0.10"), max_value=D("20"), places=2)


@given(
    preset=st.sampled_from(PRESETS), pairs=st.integers(1, 100_000), rate=rates,
    tier=st.sampled_from(list(PricingTier)), probability=st.decimals(min_value=0, max_value=1, places=3),
)
def test_the_total_lies_inside_its_range_and_all_money_is_decimal(preset, pairs, rate, tier, probability):
    e = estimate_cost(preset, pairs, replace(SPOT, tier=tier, hourly_rate=rate), interruption_probability=probability)
    assert e.cost_min <= e.total_cost <= e.cost_max
    assert e.duration_min_hours <= e.duration_hours <= e.duration_max_hours
    assert e.total_cost == e.base_gpu_cost + e.interruption_overhead
    shown = e.for_display()
    for name in MONEY_FIELDS:
        assert isinstance(getattr(e, name), Decimal)
        assert getattr(shown, name).as_tuple().exponent == -2


@given(
    rate=st.decimals(min_value=D("10"), max_value=D("20000"), places=1),
    per_pair=st.decimals(min_value=D("20"), max_value=D("8000"), places=1),
    sizes=st.lists(st.integers(10, 200_000), min_size=5, max_size=12),
)
def test_refit_recovers_any_measured_rate_and_tokens_per_pair(rate, per_pair, sizes):
    fitted = refit(measured("conservative", rate, per_pair, sizes), base=DEFAULT_COEFFICIENTS)
    assert fitted.conservative.tokens_per_second == rate
    assert fitted.conservative.seconds_per_pair == (per_pair / rate).quantize(D("0.0001"))
    assert isinstance(fitted, Coefficients)
