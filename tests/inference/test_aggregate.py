"""Aggregated posterior and ELBO surgery (refvi.inference.aggregate), by other routes.

- the Gaussian aggregate's density equals log E_x q(z | x) by Gauss-Hermite
  quadrature over x (1e-10); its KL to the prior equals a Monte Carlo
  estimate within standard errors (z-test, false-failure rate 1e-6);
- exact-posterior encoder and p_data = the model's marginal: q(z) = p(z),
  KL = 0 to 1e-12;
- ELBO surgery in closed form to 1e-10, E_x KL(q(z|x) || p(z)) also by
  quadrature over x; on an empirical data set the Monte Carlo terms add up
  to the exact expected KL within standard errors, and the mixture KL by
  Monte Carlo agrees with quadrature.
"""

import numpy as np
import pytest
from scipy import stats

from refvi import gaussian
from refvi.inference import aggregate as agg
from refvi.inference.encoder import LinearEncoder, exact_posterior_encoder
from refvi.models import linear_gaussian as lg
from refvi.verify.montecarlo import MCEstimate, mc_mean, z_test
from refvi.verify.quadrature import expect_gaussian, log_expect_gaussian

N_SIGMA = float(stats.norm.isf(1e-6 / 2))  # false-failure rate 1e-6 per test
D, K = 3, 2


def conditional(enc, x):
    """q(z | x_i) for the rows of x, a batch of Gaussians (test-side construction)."""
    means = x @ enc.A.T + enc.c
    if enc.L is not None:
        return gaussian.Gaussian(means, scale_tril=enc.L)
    return gaussian.Gaussian(means, log_std=enc.log_std)


def setup(seed=0):
    rng = np.random.default_rng(seed)
    model = lg.LinearGaussian(
        rng.normal(size=(D, K)), rng.normal(size=D), rng.uniform(0.3, 1.5, D)
    )
    enc = LinearEncoder(
        rng.normal(scale=0.5, size=(K, D)),
        rng.normal(scale=0.3, size=K),
        log_std=np.log([0.5, 0.8]),
    )
    L_data = np.tril(rng.normal(scale=0.3, size=(D, D)), -1) + np.diag(
        rng.uniform(0.6, 1.2, D)
    )
    return model, enc, rng.normal(size=D), L_data, rng


def test_exact_posterior_encoder_on_model_marginal_gives_the_prior():
    model, _, _, _, _ = setup(1)
    enc = exact_posterior_encoder(model)
    q_agg = agg.aggregate_gaussian(enc, model.mu, model.cov)
    np.testing.assert_allclose(q_agg.cov, np.eye(K), atol=1e-13)
    assert abs(gaussian.kl(q_agg, gaussian.standard_normal(K))) < 1e-12
    s = agg.surgery_gaussian(enc, model.mu, model.cov)
    assert abs(s.kl_aggregate) < 1e-12


@pytest.mark.parametrize("full", [False, True])
def test_aggregate_density_matches_quadrature_over_x(full):
    model, enc, m, L_data, rng = setup(2)
    if full:
        enc = LinearEncoder(enc.A, enc.c, L=np.array([[0.6, 0.0], [0.3, 0.7]]))
    q_agg = agg.aggregate_gaussian(enc, m, L_data @ L_data.T)
    z = rng.normal(size=(5, K))

    def log_f(x):  # log q(z_j | x) for nodes x (M, d) -> (M, 5)
        return gaussian.log_prob(conditional(enc, x), z[:, None, :]).T

    res = log_expect_gaussian(log_f, m, L_data, order=40)
    assert np.max(res.error) < 1e-11
    np.testing.assert_allclose(gaussian.log_prob(q_agg, z), res.value, rtol=1e-10)


def test_restricted_encoder_kl_is_positive_and_matches_monte_carlo():
    model, _, _, _, rng = setup(3)
    # the best diagonal encoder of a correlated posterior cannot aggregate to p(z)
    exact = exact_posterior_encoder(model)
    S = exact.L @ exact.L.T
    assert abs(S[0, 1]) > 0.05
    enc = LinearEncoder(exact.A, exact.c, log_std=0.5 * np.log(np.diag(S)))
    q_agg = agg.aggregate_gaussian(enc, model.mu, model.cov)
    kl = float(gaussian.kl(q_agg, gaussian.standard_normal(K)))
    assert kl > 1e-3
    # Monte Carlo: x ~ p_data, z ~ q(z | x), log q(z) - log p(z)
    n = 200000
    x = gaussian.sample(gaussian.Gaussian(model.mu, cov=model.cov), rng, n)
    z = x @ enc.A.T + enc.c + rng.normal(size=(n, K)) * np.exp(enc.log_std)
    f = gaussian.log_prob(q_agg, z) - gaussian.log_prob(gaussian.standard_normal(K), z)
    est = mc_mean(f)
    assert z_test(est, kl, n_sigma=N_SIGMA).ok
    # power: a 5% error in the closed form is rejected
    assert not z_test(est, 1.05 * kl, n_sigma=N_SIGMA).ok


def test_surgery_identity_in_closed_form_and_expected_kl_by_quadrature():
    model, enc, m, L_data, _ = setup(4)
    C = L_data @ L_data.T
    s = agg.surgery_gaussian(enc, m, C)
    assert s.mutual_info > 0 and s.kl_aggregate > 0
    assert abs(s.expected_kl - s.mutual_info - s.kl_aggregate) <= 1e-10 * s.expected_kl

    def kl_at(x):  # KL(q(z | x_i) || N(0, I)) for nodes x (M, d)
        return gaussian.kl(conditional(enc, x), gaussian.standard_normal(K))

    res = expect_gaussian(kl_at, m, L_data, order=6)
    np.testing.assert_allclose(s.expected_kl, res.value, rtol=1e-10)
    # the identity check fails when a term is wrong
    assert (
        abs(s.expected_kl - s.mutual_info - 1.01 * s.kl_aggregate)
        > 1e-10 * s.expected_kl
    )


def test_surgery_on_an_empirical_data_set_within_standard_errors():
    model, enc, m, L_data, rng = setup(5)
    x = m + rng.normal(size=(40, D)) @ L_data.T
    eps = np.random.default_rng(6).normal(size=(2000, 40, K))
    s = agg.surgery_empirical_mc(enc, x, eps)
    # the mixture KL by Monte Carlo agrees with quadrature
    quad = agg.kl_aggregate_empirical_quad(enc, x)
    assert quad.error < 1e-3 * s.kl_aggregate.se  # quadrature error negligible
    assert z_test(s.kl_aggregate, quad.value, n_sigma=N_SIGMA).ok
    # I + KL_agg estimates E_x KL(q(z|x) || p(z)): the same draws, one estimate
    total = MCEstimate(
        s.mutual_info.mean + s.kl_aggregate.mean,
        None,
        s.mutual_info.n,
    )
    draws = agg._draws(enc, x, eps)
    means, z = draws
    log_cond = gaussian.log_prob(conditional(enc, x), z)
    log_p = gaussian.log_prob(gaussian.standard_normal(K), z)
    per_rep = mc_mean(np.mean(log_cond - log_p, axis=1))
    np.testing.assert_allclose(total.mean, per_rep.mean, rtol=1e-12)
    assert z_test(per_rep, s.expected_kl, n_sigma=N_SIGMA).ok
    assert not z_test(per_rep, 1.05 * s.expected_kl, n_sigma=N_SIGMA).ok
    # the exact expected KL is the mean of the closed-form per-datum KLs
    per_datum = [
        gaussian.kl(
            gaussian.Gaussian(mi, log_std=enc.log_std), gaussian.standard_normal(K)
        )
        for mi in means
    ]
    np.testing.assert_allclose(s.expected_kl, np.mean(per_datum), rtol=1e-13)


def test_log_aggregate_empirical_matches_a_naive_sum():
    model, enc, m, L_data, rng = setup(7)
    x = m + rng.normal(size=(6, D)) @ L_data.T
    z = rng.normal(size=(4, K))
    naive = [
        np.log(
            np.mean(
                [
                    np.exp(
                        gaussian.log_prob(
                            gaussian.Gaussian(enc.A @ xi + enc.c, log_std=enc.log_std),
                            zj[None],
                        )[0]
                    )
                    for xi in x
                ]
            )
        )
        for zj in z
    ]
    np.testing.assert_allclose(
        agg.log_aggregate_empirical(enc, x, z), naive, rtol=1e-12
    )


def test_bad_input_raises_naming_the_argument():
    model, enc, m, L_data, rng = setup(8)
    x = rng.normal(size=(5, D))
    with pytest.raises(ValueError, match="eps"):
        agg.surgery_empirical_mc(enc, x, rng.normal(size=(3, 5, K + 1)))
    with pytest.raises(ValueError, match="cov_data"):
        agg.aggregate_gaussian(enc, m, -np.eye(D))
    with pytest.raises(ValueError, match="mean_data"):
        agg.surgery_gaussian(enc, m[:2], np.eye(D))
    dep = LinearEncoder(enc.A, enc.c, log_std=enc.log_std, B=np.zeros((K, D)))
    with pytest.raises(ValueError, match="encoder"):
        agg.aggregate_gaussian(dep, m, np.eye(D))
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="x contains NaN"):
        agg.log_aggregate_empirical(enc, bad, rng.normal(size=(2, K)))
