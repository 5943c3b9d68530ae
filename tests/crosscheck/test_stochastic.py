"""refvi.crosscheck.check_estimator: a correct reparameterized ELBO gradient
passes, a 5% bias is rejected at the stated power, and the stated false-failure
rate and detectable bias are what they claim."""

import numpy as np
import pytest
from numpy_impls import vae_sgvb_draw
from scipy import stats

from refvi.crosscheck import check_estimator, compare, get_case
from refvi.testing import assert_estimator

CASE = get_case("vae.elbo.ordinary")  # the exact ELBO and gradients
BUDGET = 2000  # draws: detectable relative bias < 5% at power 0.9 (measured)


def estimator(bias=1.0):
    inputs = CASE.inputs
    return lambda eps: vae_sgvb_draw(**inputs, eps=eps, bias=bias)


def run(seed, bias=1.0, n=BUDGET):
    rng = np.random.default_rng(seed)
    return check_estimator(estimator(bias), CASE, n, rng, noise_shape=(4, 2))


def test_the_numpy_estimator_is_the_sgvb_estimate_refvi_computes_at_given_eps():
    """At fixed noise the draw equals refvi's SGVB-B estimate ('kl') exactly."""
    case = get_case("vae.sgvb.kl")
    eps = case.inputs["eps"]
    assert eps.shape[0] > 1

    def mean_of_draws(**kw):
        kw.pop("estimator")
        eps = kw.pop("eps")
        draws = [vae_sgvb_draw(**kw, eps=e) for e in eps]
        return {k: np.mean([d[k] for d in draws], axis=0) for k in draws[0]}

    report = compare(mean_of_draws, case)
    assert report.passed, str(report)


def test_a_correct_reparameterized_gradient_passes_and_a_5pc_bias_is_rejected():
    good = run(0)
    print(good)
    assert good.passed
    assert good.detectable_relative_bias < 0.05  # the budget has the power
    assert good.false_failure_rate == 1e-6 and good.power == 0.9
    # Bonferroni over the 26 entries at family-wise 1e-6, two-sided
    m = sum(v.size for v in good.z.values())
    assert m == 26
    assert good.threshold == pytest.approx(stats.norm.isf(1e-6 / 2 / m), rel=1e-12)
    bad = run(0, bias=1.05)
    print(bad)
    assert not bad.passed
    name, index, z = bad.worst
    assert abs(z) > bad.threshold and name in bad.z
    with pytest.raises(AssertionError, match=r"estimator FAILS: worst entry 'grad_"):
        assert_estimator(
            estimator(1.05), CASE, BUDGET, np.random.default_rng(0), noise_shape=(4, 2)
        )


def test_detectable_bias_is_threshold_plus_power_quantile_standard_errors():
    r = run(1, n=200)
    for name, se in r.se.items():
        expected = (r.threshold + stats.norm.ppf(0.9)) * se
        np.testing.assert_allclose(r.detectable_bias[name], expected, rtol=1e-14)
    ratios = np.concatenate(
        [(r.detectable_bias[n] / np.abs(r.exact[n]))[r.exact[n] != 0] for n in r.exact]
    )
    assert r.detectable_relative_bias == pytest.approx(ratios.min(), rel=1e-14)


def test_an_estimator_of_the_rng_or_of_a_plain_array_works():
    exact = np.array([1.0, -2.0])

    def noisy_mean(rng):
        return exact + rng.standard_normal(2)

    r = check_estimator(noisy_mean, exact, 400, np.random.default_rng(3))
    assert r.passed and set(r.z) == {"value"}
    r = check_estimator(noisy_mean, exact + 0.5, 400, np.random.default_rng(3))
    assert not r.passed


def test_bad_estimators_are_refused_by_name():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="exact has no entry 'other'"):
        check_estimator(lambda rng: {"other": 1.0}, CASE, 3, rng)
    with pytest.raises(ValueError, match="estimator's 'value' has shape"):
        check_estimator(lambda rng: {"value": np.zeros(3)}, CASE, 3, rng)
    with pytest.raises(ValueError, match="estimator returned a non-finite entry"):
        check_estimator(lambda rng: np.array([np.nan]), np.zeros(1), 3, rng)
    with pytest.raises(ValueError, match="false_failure_rate must be in"):
        check_estimator(lambda rng: 0.0, 0.0, 3, rng, false_failure_rate=1.0)


@pytest.mark.slow
def test_100_seeds_pass_and_the_5pc_bias_is_rejected_at_the_stated_power():
    """No false failure over 100 seeds; the planted 5% bias (above the stated
    detectable bias at power 0.9) is rejected in at least 80 of 100 seeds
    (if the power is >= 0.9, fewer than 80 has probability < 1e-3)."""
    failures = [seed for seed in range(100) if not run(seed).passed]
    assert failures == []
    detected = [not run(seed, bias=1.05).passed for seed in range(100)]
    detectable = [run(seed).detectable_relative_bias for seed in range(0, 100, 10)]
    print(
        f"5% bias rejected in {sum(detected)}/100 seeds; detectable relative "
        f"bias {min(detectable):.4f}..{max(detectable):.4f}"
    )
    assert max(detectable) < 0.05
    assert sum(detected) >= 80
