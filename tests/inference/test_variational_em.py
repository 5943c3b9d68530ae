"""Variational EM with a mean-field E-step (refvi.inference.variational_em).

Routes: the mean-field E-step is checked as a maximiser of the closed-form
ELBO over diagonal q (zero gradient, ``linear_gaussian.elbo_and_grad``);
F <= log p(x) at every iteration and F never decreases; the fixed point is
compared with exact EM's.

Finding (stated, and asserted): for factor analysis the fixed point is NOT
biased in the likelihood. log p(x) depends on W only through W W^T, and a
rotation W -> W R that diagonalises W^T Psi^{-1} W makes the posterior
factorise, so the mean-field bound is tight at a rotated MLE. Variational EM
converges there: the same W W^T + Psi and log p(x) as exact EM, with W^T
Psi^{-1} W diagonal. The bias of the mean-field bound shows as the choice of
that rotation, and along the way F < log p(x) strictly.
"""

import warnings

import numpy as np
import pytest

from refvi.inference import variational_em as vem
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lg_em


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
