"""EM for the Gaussian mixture: monotone, stationary M-steps, exact trace.

Routes: the log-likelihood recomputed by the public density, the auxiliary
function's handwritten gradient at the M-step (it must vanish), the ELBO of
the sufficient statistics against the per-datum ELBO, and the chain
log p(theta_t) = F(q_t, theta_t) <= F(q_t, theta_{t+1}) <= log p(theta_{t+1}).
"""

import warnings

import numpy as np
import pytest
from test_mixture import random_mixture, scale_key, scale_of, with_scale

from refvi.models import mixture as gm
from refvi.models import mixture_em
from refvi.models.em import EMDecreaseWarning

TYPES = gm.COVARIANCE_TYPES


def clustered(rng, n, d, K):
    centres = 3.0 * rng.normal(size=(K, d))
    return centres[rng.integers(K, size=n)] + rng.normal(size=(n, d))


@pytest.mark.parametrize("covariance_type", TYPES)
def test_em_never_decreases_log_likelihood_over_50_problems(covariance_type):
    rng = np.random.default_rng(20)
    worst = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error", EMDecreaseWarning)
        for _ in range(50):
            n, d, K = int(rng.integers(60, 150)), int(rng.integers(1, 4)), 2
            x = clustered(rng, n, d, K)
            start = random_mixture(rng, K, d, covariance_type)
            # means at data points, so that no component starts far from all data
            init = with_scale(
                start.weights,
                x[rng.choice(n, K, replace=False)],
                scale_of(start),
                covariance_type,
            )
            # exact EM (reg_covar = 0): the floor's penalty is not part of log p
            _, trace = mixture_em.em(x, init, reg_covar=0.0, tol=0.0, max_iter=15)
            step = np.diff(trace.log_lik) / np.abs(trace.log_lik[:-1])
            worst = min(worst, step.min())
            assert not trace.decreased.any()
    # tolerance: never down by more than 1e-12 relative
    assert worst >= -1e-12


def test_monotonicity_check_catches_a_wrong_m_step(monkeypatch):
    """An M-step that inflates the covariances lowers log p and is flagged."""
    rng = np.random.default_rng(21)
    x = clustered(rng, 100, 2, 3)
    init = mixture_em.kmeans_plusplus_init(x, 3, "diag", rng)
    right = mixture_em._m_step_stats

    def wrong(stats, reg):
        model = right(stats, reg)
        return with_scale(model.weights, model.means, 3.0 * model.std, "diag")

    monkeypatch.setattr(mixture_em, "_m_step_stats", wrong)
    with pytest.warns(EMDecreaseWarning):
        _, trace = mixture_em.em(x, init, tol=0.0, max_iter=3)
    assert trace.decreased.any()


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("reg_covar", [0.0, 1e-2])
def test_m_step_is_a_stationary_point_of_the_auxiliary_function(
    covariance_type, reg_covar
):
    rng = np.random.default_rng(22)
    x = clustered(rng, 80, 3, 3)
    old = random_mixture(rng, 3, 3, covariance_type)
    r = mixture_em.e_step(x, old)
    new = mixture_em.m_step(x, r, covariance_type, reg_covar=reg_covar)
    _, grads = mixture_em.auxiliary_and_grad(new, x, r, reg_covar=reg_covar)
    scale = np.abs(mixture_em.auxiliary(new, x, r, reg_covar))
    for name, g in grads.items():
        # tolerance: |dQ| <= 1e-10 |Q| (Q is a sum over 80 points)
        assert np.max(np.abs(g)) <= 1e-10 * scale, name
    # ... and a maximum: moving the means lowers Q
    moved = with_scale(new.weights, new.means + 0.01, scale_of(new), covariance_type)
    assert mixture_em.auxiliary(moved, x, r, reg_covar) < mixture_em.auxiliary(
        new, x, r, reg_covar
    )


@pytest.mark.parametrize("covariance_type", TYPES)
def test_auxiliary_gradient_matches_finite_differences(covariance_type):
    from refvi.verify.gradcheck import assert_gradcheck

    rng = np.random.default_rng(23)
    x = clustered(rng, 10, 2, 2)
    model = random_mixture(rng, 2, 2, covariance_type)
    r = rng.dirichlet(np.ones(2), size=10)

    def f_and_grad(p):
        key = scale_key(covariance_type)
        m = with_scale(
            p["logits"], p["means"], p[key], covariance_type, from_logits=True
        )
        return mixture_em.auxiliary_and_grad(m, x, r, reg_covar=0.1)

    assert_gradcheck(
        f_and_grad,
        {
            "logits": model.logits,
            "means": model.means,
            scale_key(covariance_type): scale_of(model),
        },
        lower_triangular=["L"] if covariance_type in ("full", "tied") else [],
    )


def test_stationarity_check_catches_a_biased_variance():
    """Dividing the scatter by N_k - 1 instead of N_k is not stationary."""
    rng = np.random.default_rng(24)
    x = clustered(rng, 50, 2, 2)
    old = random_mixture(rng, 2, 2, "diag")
    r = mixture_em.e_step(x, old)
    new = mixture_em.m_step(x, r, "diag", reg_covar=0.0)
    N = r.sum(axis=0)
    wrong = with_scale(
        new.weights, new.means, new.std * np.sqrt(N / (N - 1))[:, None], "diag"
    )
    _, grads = mixture_em.auxiliary_and_grad(wrong, x, r)
    assert np.max(np.abs(grads["std"])) > 1e-3


@pytest.mark.parametrize("covariance_type", TYPES)
def test_trace_chain_and_log_likelihood_by_the_public_density(covariance_type):
    rng = np.random.default_rng(25)
    x = clustered(rng, 200, 2, 3) + 100.0  # far from the origin: shift matters
    init = mixture_em.kmeans_plusplus_init(x, 3, covariance_type, rng)
    fit, trace = mixture_em.em(x, init, tol=0.0, max_iter=8)
    scale = np.abs(trace.log_lik).max()
    # log p(theta_0) and log p(theta_T) recomputed by log_marginal
    np.testing.assert_allclose(
        trace.log_lik[[0, -1]],
        [gm.log_marginal(init, x).sum(), gm.log_marginal(fit, x).sum()],
        rtol=1e-12,
    )
    # exact E-step: F(q_t, theta_t) = log p(theta_t)
    np.testing.assert_allclose(trace.elbo_e, trace.log_lik[:-1], rtol=1e-12)
    # M-step raises F, and the KL gap is >= 0
    assert np.all(trace.elbo_m - trace.elbo_e >= -1e-12 * scale)
    assert np.all(trace.kl_gap >= -1e-12 * scale)
    assert trace.empty.shape == (8, 3) and not trace.empty.any()


@pytest.mark.parametrize("covariance_type", TYPES)
def test_elbo_of_statistics_equals_sum_of_per_datum_elbo(covariance_type):
    rng = np.random.default_rng(26)
    x = clustered(rng, 60, 3, 3)
    old = random_mixture(rng, 3, 3, covariance_type)
    new = random_mixture(rng, 3, 3, covariance_type)
    stats = mixture_em._e_pass(old, x, x.mean(axis=0))
    want = gm.elbo(new, x, gm.log_responsibilities(old, x)).sum()
    np.testing.assert_allclose(mixture_em._elbo_stats(new, stats), want, rtol=1e-12)


def test_blocked_pass_equals_one_block(monkeypatch):
    rng = np.random.default_rng(27)
    x = clustered(rng, 97, 2, 3)
    init = random_mixture(rng, 3, 2, "full")
    want, _ = mixture_em.em(x, init, tol=0.0, max_iter=3)
    monkeypatch.setattr(gm, "_BLOCK_ENTRIES", 30)
    got, _ = mixture_em.em(x, init, tol=0.0, max_iter=3)
    np.testing.assert_allclose(got.means, want.means, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.L, want.L, rtol=1e-12, atol=1e-12)


def test_emptied_component_is_kept_and_reported():
    """A component far from all data loses its responsibility: no NaN."""
    rng = np.random.default_rng(28)
    x = rng.normal(size=(50, 2))
    L = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.1, 0.0], [0.05, 0.1]]])
    init = gm.GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1e3, 1e3]], L, "full")
    with pytest.warns(mixture_em.EmptyComponentWarning, match=r"components \[1\]"):
        fit, trace = mixture_em.em(x, init, tol=0.0, max_iter=3)
    assert trace.empty[:, 1].all() and not trace.empty[:, 0].any()
    assert np.all(np.isfinite(fit.means)) and np.all(np.isfinite(trace.log_lik))
    np.testing.assert_array_equal(fit.means[1], init.means[1])
    np.testing.assert_array_equal(fit.L[1], init.L[1])
    assert fit.weights[1] == 0.0
    np.testing.assert_allclose(fit.weights.sum(), 1.0, rtol=1e-15)


def test_kmeans_plusplus_is_reproducible_and_checks_its_arguments():
    x = clustered(np.random.default_rng(29), 40, 2, 3)
    a = mixture_em.kmeans_plusplus_init(x, 3, "full", np.random.default_rng(5))
    b = mixture_em.kmeans_plusplus_init(x, 3, "full", np.random.default_rng(5))
    assert np.array_equal(a.means, b.means) and np.array_equal(a.L, b.L)
    with pytest.raises(ValueError, match="n_components must be <= the number"):
        mixture_em.kmeans_plusplus_init(x[:2], 3, "full", np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        mixture_em.kmeans_plusplus_init(x, 3, "full", 0)
    with pytest.raises(ValueError, match="fewer than n_components = 3 distinct"):
        mixture_em.kmeans_plusplus_init(
            np.ones((5, 2)), 3, "diag", np.random.default_rng(0)
        )


def test_em_input_errors_name_the_argument():
    model = with_scale([0.5, 0.5], np.zeros((2, 1)), np.ones(2), "spherical")
    with pytest.raises(ValueError, match="x contains NaN"):
        mixture_em.em([[0.0], [np.nan], [1.0]], model)
    with pytest.raises(ValueError, match="n_components = 2 > n = 1"):
        mixture_em.em([[0.0]], model)
    with pytest.raises(ValueError, match="reg_covar must be a finite number >= 0"):
        mixture_em.em([[0.0], [1.0]], model, reg_covar=-1.0)
    with pytest.raises(TypeError, match="init must be a GaussianMixture"):
        mixture_em.em([[0.0], [1.0]], "full")
    with pytest.raises(ValueError, match="r must be non-negative"):
        mixture_em.m_step([[0.0], [1.0]], [[1.0, 0.0], [-0.5, 1.5]], "full")


def test_em_does_not_mutate_inputs():
    rng = np.random.default_rng(30)
    x = clustered(rng, 30, 2, 2)
    x0 = x.copy()
    init = random_mixture(rng, 2, 2, "tied")
    means0 = init.means.copy()
    mixture_em.em(x, init, max_iter=2)
    assert np.array_equal(x, x0) and np.array_equal(init.means, means0)


def test_m_step_full_covariance_far_from_the_data_mean_matches_mpmath():
    """Given r, full covariances are scatters about each component's own mean.

    Two unit-scale clusters 2e6 apart: the data mean is 1e6 from both, so a
    moment formula shifted by the data mean, Sigma = S / N - m m^T with
    |m| ~ 1e6, loses eps |m|^2 / sigma^2 ~ 2e-4 relative. The reference is the
    two-pass scatter sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / N_k at 50 digits.
    """
    import mpmath

    rng = np.random.default_rng(41)
    n, d = 40, 2
    z = rng.integers(2, size=n)
    z[:2] = [0, 1]
    x = np.array([[1e6, -1e6], [-1e6, 1e6]])[z] + rng.normal(size=(n, d))
    r = np.eye(2)[z]  # each cluster its own component
    model = mixture_em.m_step(x, r, "full", reg_covar=0.0)
    with mpmath.workdps(50):
        X = [[mpmath.mpf(float(v)) for v in row] for row in x]
        for k in range(2):
            w = [mpmath.mpf(float(v)) for v in r[:, k]]
            N = mpmath.fsum(w)
            mu = [mpmath.fsum(w[i] * X[i][j] for i in range(n)) / N for j in range(d)]
            want = np.array(
                [
                    [
                        float(
                            mpmath.fsum(
                                w[i] * (X[i][a] - mu[a]) * (X[i][b] - mu[b])
                                for i in range(n)
                            )
                            / N
                        )
                        for b in range(d)
                    ]
                    for a in range(d)
                ]
            )
            got = model.covariances()[k]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * abs(want).max())
            np.testing.assert_allclose(
                model.means[k], [float(m) for m in mu], rtol=1e-15
            )
