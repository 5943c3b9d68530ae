"""EM for factor analysis / pPCA and the closed-form pPCA MLE, by other routes.

Routes: the per-datum functions of refvi.models.linear_gaussian (summed) for
every sufficient-statistic formula; the handwritten gradient of the EM
auxiliary function (itself gradchecked) for M-step stationarity; the
log-likelihood gradient for the MLE; scikit-learn's FactorAnalysis; the
sampling error of a known model.
"""

import warnings

import numpy as np
import pytest
from sklearn.decomposition import FactorAnalysis
from test_linear_gaussian import random_data, random_model

from refvi.models.em import EMDecreaseWarning, run_em
from refvi.models.linear_gaussian import (
    LinearGaussian,
    elbo,
    expected_complete_loglik_and_grad,
    log_marginal,
    log_marginal_and_grad,
)
from refvi.models.linear_gaussian_em import (
    PSI_FLOOR_REL,
    ExpectedStats,
    e_step,
    elbo_total,
    em,
    em_from_stats,
    expected_stats,
    expected_stats_from_posterior,
    log_marginal_total,
    m_step,
    m_step_from_stats,
    ppca_mle,
    ppca_mle_from_stats,
    sufficient_stats,
)


def well_identified(rng, d, k):
    """A factor model whose loadings stand well above the noise (fast EM)."""
    model = random_model(rng, d, k)
    return LinearGaussian(2.0 * model.W, model.mu, model.psi)


def rel(a, b):
    return abs(a - b) / abs(b)


# ---------------------------------------------------------------------------
# Sufficient-statistic formulas against the per-datum functions.


def test_log_marginal_total_matches_sum_of_log_marginal():
    rng = np.random.default_rng(0)
    for d, k in [(5, 2), (8, 3), (3, 1)]:
        model = random_model(rng, d, k)
        x = random_data(rng, model, 200) + 0.5  # data not centred at mu
        stats = sufficient_stats(x)
        want = log_marginal(model, x).sum()
        assert rel(log_marginal_total(model, stats), want) <= 1e-12
        wrong = LinearGaussian(model.W, model.mu + 1e-6, model.psi)
        assert rel(log_marginal_total(wrong, stats), want) > 1e-12


def test_expected_stats_two_routes_agree():
    """O(d^2 k) statistics from (xbar, Sigma_hat) = the same from the m_i; (LG.20)."""
    rng = np.random.default_rng(1)
    model = random_model(rng, 6, 2)
    x = random_data(rng, random_model(rng, 6, 2), 300)
    from_stats = expected_stats(model, sufficient_stats(x))
    from_post = expected_stats_from_posterior(x, e_step(x, model))
    for name, a, b in zip(ExpectedStats._fields, from_stats, from_post, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


def test_elbo_total_matches_sum_of_elbo_under_another_model():
    """F(q, theta') from statistics = sum_i ELBO_i for q from theta; (LG.25)."""
    rng = np.random.default_rng(2)
    model, other = random_model(rng, 5, 2), random_model(rng, 5, 2)
    x = random_data(rng, model, 100)
    post = e_step(x, model)
    es = expected_stats(model, sufficient_stats(x))
    for theta in (model, other):
        want = elbo(theta, x, post.m, post.L_S).sum()
        assert rel(elbo_total(theta, es), want) <= 1e-12
    # at the model the posterior came from, F = log p(x) (the E-step is exact)
    assert rel(elbo_total(model, es), log_marginal(model, x).sum()) <= 1e-12


def test_m_step_two_routes_agree():
    rng = np.random.default_rng(3)
    model = random_model(rng, 6, 3)
    x = random_data(rng, random_model(rng, 6, 3), 150)
    for noise in ("diag", "isotropic"):
        a = m_step(x, e_step(x, model), noise=noise)
        b = m_step_from_stats(expected_stats(model, sufficient_stats(x)), noise=noise)
        for name in ("W", "mu", "psi"):
            np.testing.assert_allclose(
                getattr(a, name), getattr(b, name), rtol=1e-11, atol=1e-13
            )


# ---------------------------------------------------------------------------
# M-step: the gradient of the EM auxiliary function vanishes at its output.


def _grad_Q(theta, x, post):
    """Gradient of Q(theta) = sum_i E_{post_i}[log p(x_i, z | theta)]; (LG.13)."""
    _, grads = expected_complete_loglik_and_grad(theta, x, post.m, post.L_S)
    return grads


@pytest.mark.parametrize("noise", ["diag", "isotropic"])
def test_m_step_zeroes_the_gradient_of_the_auxiliary_function(noise):
    rng = np.random.default_rng(4)
    for _ in range(5):
        model = random_model(rng, 7, 3, noise)
        x = random_data(rng, random_model(rng, 7, 3), 80)
        post = e_step(x, model)
        new = m_step(x, post, noise=noise)
        g_old, g_new = _grad_Q(model, x, post), _grad_Q(new, x, post)
        if noise == "isotropic":  # Q restricted to psi = sigma2 * 1
            g_old["psi"], g_new["psi"] = g_old["psi"].sum(), g_new["psi"].sum()
        for name in ("W", "mu", "psi"):
            scale = np.max(np.abs(g_old[name]))
            assert scale > 1e-3  # the old parameters were not stationary
            assert np.max(np.abs(g_new[name])) <= 1e-10 * scale, name
        # the check fails for a point next to the maximiser
        near = LinearGaussian(new.W * (1 + 1e-6), new.mu, new.psi)
        scale = np.max(np.abs(g_old["W"]))
        assert np.max(np.abs(_grad_Q(near, x, post)["W"])) > 1e-10 * scale


# ---------------------------------------------------------------------------
# EM: monotone, exact E-step, traces.


def test_em_never_decreases_the_log_likelihood_over_50_random_problems():
    rng = np.random.default_rng(5)
    for trial in range(50):
        d = int(rng.integers(2, 9))
        k = int(rng.integers(1, d))
        noise = ("diag", "isotropic")[trial % 2]
        x = random_data(rng, random_model(rng, d, k), int(rng.integers(20, 200)))
        model0 = random_model(rng, d, k, noise)
        with warnings.catch_warnings():
            warnings.simplefilter("error", EMDecreaseWarning)
            _, trace = em(x, model0, noise=noise, tol=0.0, max_iter=40)
        ll = trace.log_lik
        assert not trace.decreased.any()
        assert np.all(np.diff(ll) >= -1e-12 * np.abs(ll[:-1])), trial
        # E-step exact: F(q_t, theta_t) = log p(x; theta_t); M-step raises F
        np.testing.assert_allclose(trace.elbo_e, ll[:-1], rtol=1e-12)
        assert np.all(trace.elbo_m >= trace.elbo_e - 1e-12 * np.abs(ll[:-1]))
        assert np.all(trace.kl_gap >= -1e-12 * np.abs(ll[1:]))


def test_the_monotonicity_check_catches_a_wrong_m_step():
    """A psi update off by a factor 1.5 lowers log p(x): flagged and warned."""
    rng = np.random.default_rng(6)
    x = random_data(rng, random_model(rng, 5, 2), 200)
    stats = sufficient_stats(x)
    model0 = m_step(x, e_step(x, ppca_mle(x, 2)))  # already near the optimum

    def wrong_m_step(es):
        good = m_step_from_stats(es)
        return LinearGaussian(good.W, good.mu, 1.5 * good.psi)

    with pytest.warns(EMDecreaseWarning):
        _, trace = run_em(
            model0,
            e_step=lambda m: (expected_stats(m, stats), log_marginal_total(m, stats)),
            m_step=wrong_m_step,
            elbo=elbo_total,
            n=stats.n,
            max_iter=3,
        )
    assert trace.decreased.any() and not trace.converged


def test_em_converges_by_tolerance_and_reports_it():
    rng = np.random.default_rng(7)
    x = random_data(rng, well_identified(rng, 6, 2), 500)
    model, trace = em(x, ppca_mle(x, 2), tol=1e-9, max_iter=5000)
    assert trace.converged and trace.n_iter < 5000
    assert trace.log_lik[-1] - trace.log_lik[-2] <= 1e-9 * 500
    assert trace.log_lik.shape == (trace.n_iter + 1,)
    assert rel(trace.log_lik[-1], log_marginal(model, x).sum()) <= 1e-12
    _, short = em(x, ppca_mle(x, 2), tol=0.0, max_iter=3)
    assert short.n_iter == 3 and not short.converged


def test_fits_from_stats_equal_fits_from_data():
    rng = np.random.default_rng(15)
    x = random_data(rng, well_identified(rng, 5, 2), 100)
    stats = sufficient_stats(x)
    a, b = ppca_mle(x, 2), ppca_mle_from_stats(stats, 2)
    np.testing.assert_array_equal(a.W, b.W)
    fit_x, trace_x = em(x, a, max_iter=20)
    fit_s, trace_s = em_from_stats(stats, a, max_iter=20)
    np.testing.assert_array_equal(fit_x.psi, fit_s.psi)
    np.testing.assert_array_equal(trace_x.log_lik, trace_s.log_lik)
    with pytest.raises(TypeError, match="stats must be a SufficientStats"):
        em_from_stats(x, a)


# ---------------------------------------------------------------------------
# pPCA: EM's fixed point is the Tipping-Bishop MLE.


def test_ppca_mle_is_a_stationary_point_of_the_log_likelihood():
    rng = np.random.default_rng(8)
    x = random_data(rng, random_model(rng, 6, 2, "isotropic"), 400)
    mle = ppca_mle(x, 2)
    _, g = log_marginal_and_grad(mle, x)
    _, g0 = log_marginal_and_grad(random_model(rng, 6, 2, "isotropic"), x)
    for name, grad in (("W", g["W"]), ("mu", g["mu"]), ("sigma2", g["psi"].sum())):
        scale = np.max(np.abs(g0[name if name != "sigma2" else "psi"]))
        assert np.max(np.abs(grad)) <= 1e-10 * scale, name
    # ... and a maximum: small random moves only lower log p(x)
    best = log_marginal(mle, x).sum()
    for _ in range(5):
        W = mle.W + 1e-3 * rng.standard_normal(mle.W.shape)
        moved = LinearGaussian.ppca(W, mle.mu, mle.psi[0] * (1 + 1e-3))
        assert log_marginal(moved, x).sum() < best


def test_ppca_em_converges_to_the_closed_form_mle():
    rng = np.random.default_rng(9)
    for d, k in [(5, 1), (6, 2), (8, 3)]:
        x = random_data(rng, random_model(rng, d, k, "isotropic"), 300)
        model0 = random_model(rng, d, k, "isotropic")
        fit, trace = em(x, model0, noise="isotropic", tol=1e-15, max_iter=20000)
        mle = ppca_mle(x, k)
        ll_mle = log_marginal(mle, x).sum()
        assert abs(trace.log_lik[-1] - ll_mle) <= 1e-8 * abs(ll_mle)
        assert trace.log_lik[-1] <= ll_mle + 1e-12 * abs(ll_mle)  # MLE is the top
        # W up to rotation: W W^T and sigma2 agree
        np.testing.assert_allclose(fit.W @ fit.W.T, mle.W @ mle.W.T, atol=1e-6)
        np.testing.assert_allclose(fit.psi, mle.psi, rtol=1e-6)
        # mu = xbar - W mbar moves to xbar at EM's linear rate while log p(x)
        # changes only quadratically in mu - xbar: a looser match than W W^T
        np.testing.assert_allclose(fit.mu, mle.mu, atol=1e-5)


# ---------------------------------------------------------------------------
# Factor analysis: recovers a known model; agrees with scikit-learn.


def test_fa_em_recovers_the_covariance_of_a_known_model():
    """|C_fit - C_true|_jl within 5 sampling standard errors of Sigma_hat_jl."""
    rng = np.random.default_rng(10)
    d, k, n = 6, 2, 20000
    true = LinearGaussian(
        rng.standard_normal((d, k)), rng.standard_normal(d), rng.uniform(0.2, 1.0, d)
    )
    x = random_data(rng, true, n)
    fit, trace = em(x, ppca_mle(x, k), tol=1e-10, max_iter=5000)
    assert trace.converged
    C, C_true = fit.cov, true.cov
    diag = np.diag(C_true)
    se = np.sqrt((np.outer(diag, diag) + C_true**2) / n)
    assert np.max(np.abs(C - C_true) / se) <= 5
    np.testing.assert_allclose(fit.mu, x.mean(axis=0), atol=1e-10)
    # the check fails for the truth with one loading changed by 10%
    W_wrong = true.W.copy()
    W_wrong[0, 0] *= 1.1
    C_wrong = LinearGaussian(W_wrong, true.mu, true.psi).cov
    assert np.max(np.abs(C - C_wrong) / se) > 5


def test_fa_em_matches_scikit_learn_factor_analysis():
    rng = np.random.default_rng(11)
    d, k = 7, 2
    x = random_data(rng, well_identified(rng, d, k), 2000)
    fit, _ = em(x, ppca_mle(x, k), tol=1e-12, max_iter=10000)
    # scikit-learn's tol is on the change of the total log-likelihood
    fa = FactorAnalysis(n_components=k, tol=1e-9, max_iter=10000, svd_method="lapack")
    fa.fit(x)
    sk = LinearGaussian(fa.components_.T, fa.mean_, fa.noise_variance_)
    ll_sk = log_marginal(sk, x).sum()
    ll = log_marginal(fit, x).sum()
    assert rel(ll, ll_sk) <= 1e-9
    np.testing.assert_allclose(fit.cov, sk.cov, atol=1e-4)


# ---------------------------------------------------------------------------
# Bad and degenerate input.


def test_bad_input_raises_naming_the_problem():
    rng = np.random.default_rng(12)
    model = random_model(rng, 4, 2)
    x = random_data(rng, model, 30)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 4\)"):
        em(x[:, :3], model)
    with pytest.raises(ValueError, match="k must be < d"):
        em(x, random_model(rng, 4, 4))
    with pytest.raises(ValueError, match="k must be < d"):
        ppca_mle(x, 4)
    with pytest.raises(ValueError, match="k must be >= 1"):
        ppca_mle(x, 0)
    with pytest.raises(ValueError, match="noise must be one of"):
        em(x, model, noise="full")
    with pytest.raises(ValueError, match="init.psi must be isotropic"):
        em(x, model, noise="isotropic")
    with pytest.raises(ValueError, match="psi_floor must be positive"):
        em(x, model, psi_floor=0.0)
    x_nan = x.copy()
    x_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        em(x_nan, model)
    with pytest.raises(ValueError, match="x contains NaN"):
        sufficient_stats(x_nan)
    with pytest.raises(ValueError, match="every column of x is constant"):
        ppca_mle(np.ones((10, 3)), 1)
    with pytest.raises(TypeError, match="stats must be a SufficientStats"):
        log_marginal_total(model, (30, x.mean(0), np.cov(x.T)))
    with pytest.raises(
        ValueError, match=r"stats.xbar must have shape \(5,\); got \(4,\)"
    ):
        log_marginal_total(random_model(rng, 5, 2), sufficient_stats(x))
    with pytest.raises(ValueError, match=r"post.m must have shape \("):
        m_step(x[:10], e_step(x, model))


def test_em_does_not_mutate_its_inputs():
    rng = np.random.default_rng(13)
    x = random_data(rng, random_model(rng, 4, 1), 50)
    before = x.copy()
    em(x, ppca_mle(x, 1), max_iter=5)
    np.testing.assert_array_equal(x, before)


def test_constant_column_gets_the_noise_floor_not_nan():
    rng = np.random.default_rng(14)
    x = random_data(rng, random_model(rng, 5, 2), 300)
    x[:, 2] = 3.0  # a constant column
    floor = PSI_FLOOR_REL * np.mean(np.var(x, axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit, trace = em(x, random_model(rng, 5, 2), tol=1e-10, max_iter=500)
        mle = ppca_mle(x, 2)
    assert np.all(np.isfinite(trace.log_lik)) and not trace.decreased.any()
    assert np.all(np.isfinite(fit.W)) and fit.psi[2] == pytest.approx(floor)
    assert np.all(np.isfinite(log_marginal(fit, x)))
    assert np.isfinite(log_marginal(mle, x).sum())
    # data exactly in a k-dim subspace: sigma2 falls to the floor, no NaN
    flat = rng.standard_normal((100, 2)) @ rng.standard_normal((2, 4))
    mle_flat = ppca_mle(flat, 2, psi_floor=1e-8)
    assert mle_flat.psi[0] == 1e-8 and np.all(np.isfinite(mle_flat.W))
