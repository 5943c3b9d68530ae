"""The Monte Carlo z-test checks itself: calibrated standard errors, accepts an
unbiased estimator and rejects a biased one at fixed seeds."""

import numpy as np
import pytest
from scipy import stats

from refvi.verify.montecarlo import MCEstimate, assert_z_test, mc_mean, z_test

MU, SIGMA = 0.7, 1.5
# E[z, z^2, z^3] for z ~ N(mu, sigma^2)
MOMENTS = np.array([MU, MU**2 + SIGMA**2, MU**3 + 3 * MU * SIGMA**2])


def moment_samples(z):
    return np.stack([z, z**2, z**3], axis=1)


def test_mc_mean_matches_the_textbook_formulas():
    x = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 11.0]])
    est = mc_mean(x)
    np.testing.assert_allclose(est.mean, [8 / 3, 6.0], rtol=1e-15)
    var = [np.sum((x[:, j] - x[:, j].mean()) ** 2) / 2 for j in range(2)]
    np.testing.assert_allclose(est.se, np.sqrt(np.array(var) / 3), rtol=1e-15)
    assert est.n == 3
    est_t = mc_mean(x.T, axis=1)
    np.testing.assert_allclose(est_t.mean, est.mean, rtol=1e-15)
    np.testing.assert_allclose(est_t.se, est.se, rtol=1e-15)


def test_mc_mean_scalar_samples_and_validation():
    x = np.array([1.0, 2.0, 4.0])
    x0 = x.copy()
    est = mc_mean(x)
    assert np.ndim(est.mean) == 0 and np.ndim(est.se) == 0
    np.testing.assert_array_equal(x, x0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        mc_mean([1.0])
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        mc_mean(np.ones((3, 2)), axis=2)
    with pytest.raises(ValueError, match="samples contains NaN"):
        mc_mean([1.0, np.nan])


def test_standard_error_is_calibrated_over_many_seeds():
    # z-scores of 400 independent estimates have standard deviation ~1
    z = [
        z_test(mc_mean(np.random.default_rng(seed).normal(MU, SIGMA, 200)), MU).z
        for seed in range(400)
    ]
    assert abs(np.std(z) - 1) <= 0.15  # the std of the std is ~0.035


def test_scalar_threshold_is_exactly_n_sigma_and_bonferroni_grows_with_m():
    scalar = z_test(MCEstimate(0.0, 1.0, 10), 0.0, n_sigma=5.0)
    assert scalar.threshold == pytest.approx(5.0, rel=1e-12)
    vector = z_test(MCEstimate(np.zeros(10), np.ones(10), 10), 0.0, n_sigma=5.0)
    expected = stats.norm.isf(stats.norm.sf(5.0) / 10)
    assert vector.threshold == pytest.approx(expected, rel=1e-12)
    assert vector.threshold > 5.0


def test_z_with_zero_standard_error():
    est = MCEstimate(np.array([1.0, 1.0, 2.0]), np.array([0.0, 0.0, 0.5]), 5)
    result = z_test(est, np.array([1.0, 3.0, 1.0]))
    np.testing.assert_array_equal(result.z, [0.0, -np.inf, 2.0])
    assert not result.ok


@pytest.mark.parametrize("seed", range(5))
def test_z_test_accepts_an_unbiased_estimator(seed):
    z = np.random.default_rng(seed).normal(MU, SIGMA, 20_000)
    assert_z_test(mc_mean(moment_samples(z)), MOMENTS)


@pytest.mark.parametrize("seed", range(5))
def test_z_test_rejects_a_biased_estimator(seed):
    # a classic bug: scaling by the variance instead of the standard deviation
    eps = np.random.default_rng(seed).standard_normal(20_000)
    est = mc_mean(moment_samples(MU + SIGMA**2 * eps))
    result = z_test(est, MOMENTS)
    assert not result.ok
    with pytest.raises(AssertionError, match=r"worst entry \([12],\)"):
        assert_z_test(est, MOMENTS)


def test_z_test_catches_a_small_bias_with_enough_samples():
    # a bias of 2% of sigma: invisible at n = 1e3, caught at n = 1e6
    z = np.random.default_rng(7).normal(MU + 0.02 * SIGMA, SIGMA, 1_000_000)
    assert z_test(mc_mean(z[:1000]), MU).ok
    assert not z_test(mc_mean(z), MU).ok


def test_assert_z_test_message_names_the_entry_and_numbers():
    est = MCEstimate(np.array([0.0, 1.0]), np.array([0.1, 0.1]), 100)
    with pytest.raises(AssertionError, match=r"worst entry \(1,\).*z = 10"):
        assert_z_test(est, [0.0, 0.0])


def test_z_test_validates_arguments():
    with pytest.raises(TypeError, match="estimate must be an MCEstimate"):
        z_test((0.0, 1.0, 3), 0.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        z_test(MCEstimate(np.zeros(3), np.ones(3), 5), np.zeros(2))
    with pytest.raises(ValueError, match="n_sigma must be positive"):
        z_test(MCEstimate(0.0, 1.0, 5), 0.0, n_sigma=0.0)
