"""Variational EM with a mean-field E-step (refvi.inference.variational_em).

Routes: the mean-field E-step is checked as a maximiser of the closed-form
ELBO over diagonal q (zero gradient, ``linear_gaussian.elbo_and_grad``);
F <= log p(x) at every iteration and F never decreases; the fixed point is
compared with exact EM's.

Finding (stated, and asserted): for factor analysis with W free the fixed
point is NOT biased in the likelihood. log p(x) depends on W only through
W W^T, and a rotation W -> W R that diagonalises W^T Psi^{-1} W makes the
posterior factorise, so the mean-field bound is tight at a rotated MLE.
Variational EM converges there: the same W W^T + Psi and log p(x) as exact
EM, with W^T Psi^{-1} W diagonal. The bias of the mean-field bound shows as
the choice of that rotation, and along the way F < log p(x) strictly.

With W held at known loadings (only mu and psi fitted, ``em_fixed_loadings``)
no rotation is available and the bias of Turner & Sahani (2011) shows: the
mean-field fixed point differs from the restricted MLE, has a lower exact
log-likelihood, and F < log p(x) at every iteration. The restricted MLE that
exact EM reaches is confirmed by two other routes: central differences of
the exact log-likelihood vanish there, and scipy's BFGS finds the same point.
"""

import functools
import warnings

import numpy as np
import pytest
from scipy import optimize

from refvi.inference import variational_em as vem
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lg_em
from refvi.verify.gradcheck import numerical_gradient


def fa_data(seed, n=500, d=6, k=2):
    rng = np.random.default_rng(seed)
    truth = lg.LinearGaussian(
        rng.normal(size=(d, k)), rng.normal(size=d), rng.uniform(0.2, 1.0, d)
    )
    x = (
        rng.normal(size=(n, k)) @ truth.W.T
        + truth.mu
        + rng.normal(size=(n, d)) * np.sqrt(truth.psi)
    )
    start = lg.LinearGaussian(rng.normal(size=(d, k)), x.mean(axis=0), np.ones(d))
    return x, start


def test_mean_field_e_step_maximises_the_elbo_over_diagonal_q():
    x, model = fa_data(0)
    post = lg.posterior(model, x)
    v = vem.mean_field_variances(model)
    log_std = np.broadcast_to(0.5 * np.log(v), post.m.shape)
    _, g = lg.elbo_and_grad(model, x, post.m, log_std_q=log_std)
    assert np.max(np.abs(g["m_q"])) < 1e-12 * np.max(np.abs(x))
    assert np.max(np.abs(g["log_std_q"])) < 1e-12
    # and the mean-field statistics give the same total ELBO as the per-datum route
    es = vem.mean_field_stats(model, lg_em.sufficient_stats(x))
    total = lg.elbo(model, x, post.m, log_std_q=log_std).sum()
    assert abs(lg_em.elbo_total(model, es) - total) < 1e-10 * abs(total)


def test_elbo_is_below_log_likelihood_at_every_iteration_and_never_decreases():
    x, start = fa_data(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an F decrease would warn
        _, trace = vem.variational_em(x, start, tol=1e-12, max_iter=3000)
    assert trace.converged
    assert np.all(trace.elbo <= trace.log_lik + 1e-9 * np.abs(trace.log_lik))
    assert np.all(np.diff(trace.elbo) >= -1e-9 * np.abs(trace.elbo[1:]))
    assert np.all(trace.elbo_m >= trace.elbo[:-1] - 1e-9 * np.abs(trace.elbo[:-1]))
    # the gap KL(q || p(z|x)) > 0 away from the fixed point
    assert trace.log_lik[0] - trace.elbo[0] > 1.0


def test_fixed_point_is_a_rotated_mle_with_factorised_posterior():
    x, start = fa_data(1)
    model_v, trace_v = vem.variational_em(x, start, tol=1e-12, max_iter=3000)
    model_e, trace_e = lg_em.em(x, start, tol=1e-12, max_iter=5000)
    assert trace_v.converged and trace_e.converged
    n = x.shape[0]
    # same likelihood: the marginal covariance agrees with exact EM's
    np.testing.assert_allclose(model_v.cov, model_e.cov, rtol=0, atol=1e-4)
    assert abs(trace_v.log_lik[-1] - trace_e.log_lik[-1]) < 1e-6 * n
    # ... but a different W: the rotation that factorises the posterior
    G = model_v.W.T @ (model_v.W / model_v.psi[:, None])
    assert abs(G[0, 1]) < 1e-4 * np.max(np.abs(G))
    G_e = model_e.W.T @ (model_e.W / model_e.psi[:, None])
    assert abs(G_e[0, 1]) > 1e-2 * np.max(np.abs(G_e))
    # so the bound is tight there
    assert trace_v.log_lik[-1] - trace_v.elbo[-1] < 1e-6 * n


def test_mean_field_bound_prefers_the_factorising_rotation():
    """At the exact-EM MLE, F_mf < log p(x); rotating W to diagonalise
    W^T Psi^{-1} W leaves log p(x) unchanged and closes the gap."""
    x, start = fa_data(3)
    model, _ = lg_em.em(x, start, tol=1e-12, max_iter=5000)
    stats = lg_em.sufficient_stats(x)
    G = model.W.T @ (model.W / model.psi[:, None])
    R = np.linalg.eigh(G)[1]
    rotated = lg.LinearGaussian(model.W @ R, model.mu, model.psi)
    for m in (model, rotated):
        assert (
            abs(
                lg_em.log_marginal_total(m, stats)
                - lg_em.log_marginal_total(model, stats)
            )
            < 1e-8 * stats.n
        )
    gap = lg_em.log_marginal_total(model, stats) - lg_em.elbo_total(
        model, vem.mean_field_stats(model, stats)
    )
    gap_rot = lg_em.log_marginal_total(rotated, stats) - lg_em.elbo_total(
        rotated, vem.mean_field_stats(rotated, stats)
    )
    assert gap > 1e-2 * stats.n
    assert abs(gap_rot) < 1e-9 * stats.n


def test_bad_input_raises_naming_the_argument():
    x, start = fa_data(4, n=20)
    with pytest.raises(TypeError, match="model0"):
        vem.variational_em(x, "model")
    with pytest.raises(ValueError, match="x must have shape"):
        vem.variational_em(x[:, :3], start)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        vem.variational_em(bad, start)


# ---------------------------------------------------------------------------
# Known loadings: W fixed, only (mu, psi) fitted. No rotation can absorb the
# mean-field restriction, and the bias of Turner & Sahani (2011) shows.


def fixed_loadings_data(seed, n=400, d=5, k=2):
    """Data from factor analysis whose loadings have correlated columns, so
    that W^T Psi^{-1} W is far from diagonal; the start keeps those loadings."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, k))
    W[:, 1] = 0.8 * W[:, 0] + 0.6 * W[:, 1]
    truth = lg.LinearGaussian(W, rng.normal(size=d), rng.uniform(0.2, 1.0, d))
    x = (
        rng.normal(size=(n, k)) @ W.T
        + truth.mu
        + rng.normal(size=(n, d)) * np.sqrt(truth.psi)
    )
    start = lg.LinearGaussian(W, x.mean(axis=0) + 0.3, np.ones(d))
    return x, start


@functools.lru_cache(maxsize=8)
def fit_fixed(seed, e_step):
    """em_fixed_loadings on ``fixed_loadings_data(seed)``, run once per test
    session (the returned arrays are not modified by the tests)."""
    x, start = fixed_loadings_data(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an F decrease would warn
        model, trace = vem.em_fixed_loadings(
            x, start, e_step=e_step, tol=1e-13, max_iter=20000
        )
    assert trace.converged
    return model, trace


def exact_log_lik(x, W):
    """sum_i log p(x_i) by the per-datum route (LG.7), as a function of
    (mu, log psi) with W fixed."""

    def f(p):
        return float(
            np.sum(
                lg.log_marginal(lg.LinearGaussian(W, p["mu"], np.exp(p["log_psi"])), x)
            )
        )

    return f


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_em_with_fixed_loadings_reaches_the_restricted_mle(seed):
    """Two independent routes to the restricted MLE: the gradient of the exact
    log-likelihood w.r.t. (mu, log psi) vanishes there (Richardson central
    differences, relative to its size at the start), and scipy's BFGS on the
    exact log-likelihood from another start finds the same point."""
    x, start = fixed_loadings_data(seed)
    model, trace = fit_fixed(seed, "exact")
    f = exact_log_lik(x, start.W)
    at = {"mu": model.mu, "log_psi": np.log(model.psi)}
    g = numerical_gradient(f, at)
    g0 = numerical_gradient(f, {"mu": start.mu, "log_psi": np.log(start.psi)})
    size = lambda g: np.max(np.abs(np.concatenate([g["mu"], g["log_psi"]])))  # noqa: E731
    assert size(g) < 1e-6 * size(g0)
    stats = lg_em.sufficient_stats(x)
    res = optimize.minimize(  # log p(x) from the statistics (LG.19), O(d^3)
        lambda v: (
            -lg_em.log_marginal_total(
                lg.LinearGaussian(start.W, v[:5], np.exp(v[5:])), stats
            )
        ),
        np.zeros(10),
        method="BFGS",
        options={"gtol": 1e-8},
    )
    np.testing.assert_allclose(np.exp(res.x[5:]), model.psi, rtol=1e-4)
    np.testing.assert_allclose(res.x[:5], model.mu, rtol=0, atol=1e-4)
    assert abs(-res.fun - trace.log_lik[-1]) < 1e-10 * abs(res.fun)
    # and the exact E-step closes the gap: F = log p(x) at every iteration
    np.testing.assert_allclose(trace.elbo, trace.log_lik, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_mean_field_fixed_point_with_fixed_loadings_is_biased(seed):
    """The variational fixed point differs from the restricted MLE, has a
    lower exact log-likelihood, and F <= log p(x) at every iteration (both
    recomputed at the fixed point by the per-datum closed forms)."""
    x, start = fixed_loadings_data(seed)
    model_v, trace_v = fit_fixed(seed, "mean_field")
    model_e, trace_e = fit_fixed(seed, "exact")
    # F <= log p(x) at every iteration, strictly: the gap cannot close
    gap = trace_v.log_lik - trace_v.elbo
    assert np.all(gap > 1.0)
    # the trace's numbers, recomputed datum by datum at the fixed point
    post = lg.posterior(model_v, x)
    log_std = np.broadcast_to(
        0.5 * np.log(vem.mean_field_variances(model_v)), post.m.shape
    )
    F = lg.elbo(model_v, x, post.m, log_std_q=log_std).sum()
    log_p = lg.log_marginal(model_v, x).sum()
    assert abs(F - trace_v.elbo[-1]) < 1e-10 * abs(F)
    assert abs(log_p - trace_v.log_lik[-1]) < 1e-10 * abs(log_p)
    assert F < log_p - 1.0
    # a different point, with a lower exact log-likelihood
    assert np.max(np.abs(model_v.psi - model_e.psi) / model_e.psi) > 0.1
    assert trace_e.log_lik[-1] - trace_v.log_lik[-1] > 1.0
    # mu is x-bar at both fixed points: the mean-field KL does not depend on it
    np.testing.assert_allclose(model_v.mu, x.mean(axis=0), rtol=0, atol=1e-5)
    np.testing.assert_allclose(model_e.mu, x.mean(axis=0), rtol=0, atol=1e-5)


def test_mean_field_fixed_point_maximises_the_mean_field_bound():
    """What variational EM does maximise: F_mf(theta) = max over factorised q
    of F, whose gradient w.r.t. (mu, log psi) vanishes at the variational
    fixed point (central differences) but not at the restricted MLE."""
    x, start = fixed_loadings_data(0)
    model_v, _ = fit_fixed(0, "mean_field")
    model_e, _ = fit_fixed(0, "exact")
    stats = lg_em.sufficient_stats(x)

    def F_mf(p):
        m = lg.LinearGaussian(start.W, p["mu"], np.exp(p["log_psi"]))
        return lg_em.elbo_total(m, vem.mean_field_stats(m, stats))

    def size(m):
        g = numerical_gradient(F_mf, {"mu": m.mu, "log_psi": np.log(m.psi)})
        return np.max(np.abs(np.concatenate([g["mu"], g["log_psi"]])))

    assert size(model_v) < 1e-6 * size(model_e)


def test_m_step_fixed_loadings_zeroes_the_gradient_of_the_auxiliary_function():
    """The update maximises F(q, theta) over (mu, psi) at fixed q and W: the
    gradient of the closed-form F (LG.25) w.r.t. (mu, psi) vanishes there
    (central differences, relative to its size before the step)."""
    x, start = fixed_loadings_data(1)
    stats = lg_em.sufficient_stats(x)
    for es in (vem.mean_field_stats(start, stats), lg_em.expected_stats(start, stats)):
        new = vem.m_step_fixed_loadings(es, start.W)
        assert np.array_equal(new.W, start.W)

        def Q(p, es=es):
            return lg_em.elbo_total(lg.LinearGaussian(start.W, p["mu"], p["psi"]), es)

        def size(m):
            g = numerical_gradient(Q, {"mu": m.mu, "psi": m.psi})
            return np.max(np.abs(np.concatenate([g["mu"], g["psi"]])))

        assert size(new) < 1e-8 * size(start)


def test_fixed_loadings_bad_input_raises_naming_the_argument():
    x, start = fixed_loadings_data(4, n=20)
    with pytest.raises(ValueError, match="e_step"):
        vem.em_fixed_loadings(x, start, e_step="full")
    with pytest.raises(TypeError, match="model0"):
        vem.em_fixed_loadings(x, "model")
    es = lg_em.expected_stats(start, lg_em.sufficient_stats(x))
    with pytest.raises(ValueError, match="W"):
        vem.m_step_fixed_loadings(es, start.W[:, :1])
