"""Linear-Gaussian model: every closed form against another route.

Routes: the dense covariance and scipy.stats for log p(x); numerical
integration over z (refvi.verify.quadrature) for p(x), the posterior moments
and the ELBO; the Gaussian KL of refvi.gaussian for the gap identity; central
differences (refvi.verify.gradcheck) for every gradient.
"""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from refvi.gaussian import Gaussian, _log_prob_chol, entropy, kl, log_prob
from refvi.models.linear_gaussian import (
    LinearGaussian,
    elbo,
    elbo_and_grad,
    expected_complete_loglik,
    expected_complete_loglik_and_grad,
    kl_to_posterior,
    log_joint,
    log_lik,
    log_marginal,
    log_marginal_and_grad,
    log_posterior,
    log_prior,
    posterior,
)
from refvi.verify.gradcheck import assert_gradcheck, gradcheck, taylor_test
from refvi.verify.quadrature import expect_gaussian, integrate, log_expect_gaussian


def random_model(rng, d, k, noise="diag"):
    W = rng.standard_normal((d, k))
    mu = rng.standard_normal(d)
    if noise == "isotropic":
        return LinearGaussian.ppca(W, mu, rng.uniform(0.3, 1.5))
    return LinearGaussian(W, mu, rng.uniform(0.3, 1.5, size=d))


def random_data(rng, model, n):
    z = rng.standard_normal((n, model.k))
    eps = rng.standard_normal((n, model.d)) * np.sqrt(model.psi)
    return z @ model.W.T + model.mu + eps


def random_L(rng, *shape):
    """Lower-triangular factors with a positive diagonal, shape (*shape, k, k)."""
    k = shape[-1]
    A = np.tril(0.4 * rng.standard_normal(shape + (k,)), k=-1)
    return A + rng.uniform(0.4, 1.5, size=shape)[..., None] * np.eye(k)


def random_q(rng, n, k):
    """q's covariance arguments by form: a shared L_q, n of them, or log_std_q."""
    return {
        "shared": {"L_q": random_L(rng, k)},
        "batched": {"L_q": random_L(rng, n, k)},
        "diag": {"log_std_q": 0.5 * rng.standard_normal((n, k))},
    }


def rel_err(a, b):
    return np.max(np.abs(np.asarray(a) - b) / np.maximum(np.abs(b), 1e-300))


# ---------------------------------------------------------------------------
# Parameters and validation.


def test_model_is_frozen_read_only_and_copies_its_input():
    W = np.ones((3, 2))
    model = LinearGaussian(W, np.zeros(3), np.ones(3))
    W[0, 0] = 5.0
    assert model.W[0, 0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        model.W[0, 0] = 2.0
    with pytest.raises(AttributeError):
        model.W = W
    assert (model.d, model.k) == (3, 2)


def test_ppca_constructor_gives_isotropic_noise():
    model = LinearGaussian.ppca(np.ones((4, 1)), np.zeros(4), 0.5)
    np.testing.assert_array_equal(model.psi, np.full(4, 0.5))
    with pytest.raises(ValueError, match="sigma2 must be positive"):
        LinearGaussian.ppca(np.ones((4, 1)), np.zeros(4), 0.0)
    with pytest.raises(ValueError, match="sigma2 must have shape"):
        LinearGaussian.ppca(np.ones((4, 1)), np.zeros(4), [0.5, 0.5])


@pytest.mark.parametrize(
    ("W", "mu", "psi", "match"),
    [
        (np.ones(3), np.zeros(3), np.ones(3), "W must have 2 dimension"),
        (np.ones((3, 2)), np.zeros(4), np.ones(3), r"mu must have shape \(3,\)"),
        (np.ones((3, 2)), np.zeros(3), np.ones(2), r"psi must have shape \(3,\)"),
        (np.ones((3, 2)), np.zeros(3), [1.0, 0.0, 1.0], "psi must be positive"),
        (np.ones((3, 2)), np.zeros(3), [1.0, -2.0, 1.0], "psi must be positive"),
        (np.full((3, 2), np.nan), np.zeros(3), np.ones(3), "W contains NaN"),
        (np.ones((3, 2)), [0.0, np.inf, 0.0], np.ones(3), "mu contains NaN or inf"),
    ],
)
def test_bad_parameters_raise_naming_the_argument(W, mu, psi, match):
    with pytest.raises(ValueError, match=match):
        LinearGaussian(W, mu, psi)


def test_bad_data_and_latents_raise_naming_the_argument():
    rng = np.random.default_rng(1)
    model = random_model(rng, 4, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 4\)"):
        log_marginal(model, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="x contains NaN"):
        posterior(model, np.array([[0.0, np.nan, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"z must have shape \(\*, 2\)"):
        log_prior(model, np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"x must have shape \(4,\)"):
        log_lik(model, np.zeros(3), np.zeros((1, 2)))
    with pytest.raises(TypeError, match="model must be a LinearGaussian"):
        log_marginal("model", np.zeros((1, 4)))
    with pytest.raises(ValueError, match="method must be 'woodbury' or 'dense'"):
        log_marginal(model, np.zeros((1, 4)), method="inverse")
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"m_q must have shape \(3, 2\)"):
        elbo(model, x, np.zeros((3, 1)), np.eye(2))
    with pytest.raises(ValueError, match="exactly one of L_q and log_std_q"):
        elbo(model, x, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="L_q must be lower triangular"):
        elbo(model, x, np.zeros((3, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="L_q must have a positive diagonal"):
        kl_to_posterior(model, x, np.zeros((3, 2)), -np.eye(2))
    with pytest.raises(ValueError, match="L_q must be lower triangular"):
        elbo(model, x, np.zeros((3, 2)), np.ones((3, 2, 2)))
    with pytest.raises(ValueError, match=r"L_q must have shape \(3, 2, 2\)"):
        elbo(model, x, np.zeros((3, 2)), np.ones((4, 2, 2)))
    with pytest.raises(ValueError, match=r"log_std_q must have shape \(3, 2\)"):
        elbo(model, x, np.zeros((3, 2)), log_std_q=np.zeros(2))
    with pytest.raises(ValueError, match=r"dout must have shape \(3,\)"):
        log_marginal_and_grad(model, x, dout=np.ones(2))


def test_float32_and_int_input_is_promoted():
    rng = np.random.default_rng(2)
    model = random_model(rng, 3, 1)
    x = rng.integers(-3, 3, size=(4, 3))
    np.testing.assert_allclose(
        log_marginal(model, x), log_marginal(model, x.astype(np.float64)), rtol=0
    )
    m32 = LinearGaussian(
        model.W.astype(np.float32), model.mu.astype(np.float32), np.ones(3, np.float32)
    )
    assert m32.W.dtype == np.float64


def test_nothing_mutates_its_inputs():
    rng = np.random.default_rng(3)
    model = random_model(rng, 4, 2)
    x = random_data(rng, model, 5)
    m_q, L_q = rng.standard_normal((5, 2)), random_L(rng, 5, 2)
    dout = rng.standard_normal(5)
    before = [a.copy() for a in (x, m_q, L_q, dout)]
    log_marginal_and_grad(model, x, dout=dout)
    posterior(model, x)
    elbo_and_grad(model, x, m_q, L_q, dout=dout)
    kl_to_posterior(model, x, m_q, L_q)
    for a, b in zip((x, m_q, L_q, dout), before, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# log p(x): Woodbury against the dense covariance and scipy.stats.


@pytest.mark.parametrize(("d", "k"), [(1, 1), (5, 1), (6, 2), (8, 3), (3, 3), (2, 4)])
@pytest.mark.parametrize("noise", ["diag", "isotropic"])
def test_log_marginal_matches_dense_and_scipy(d, k, noise):
    rng = np.random.default_rng(10 * d + k)
    model = random_model(rng, d, k, noise)
    x = random_data(rng, model, 20) + rng.standard_normal((20, d))
    woodbury = log_marginal(model, x)
    dense = log_marginal(model, x, method="dense")
    ref = multivariate_normal(model.mu, model.cov).logpdf(x)
    assert woodbury.shape == (20,)
    assert rel_err(woodbury, dense) <= 1e-12  # closed form vs dense path
    assert rel_err(woodbury, ref) <= 1e-12  # closed form vs scipy.stats


def test_log_marginal_check_fails_for_a_wrong_model():
    """The scipy comparison detects a log p(x) that dropped the det-lemma term."""
    rng = np.random.default_rng(11)
    model = random_model(rng, 5, 2)
    x = random_data(rng, model, 10)
    ref = multivariate_normal(model.mu, model.cov).logpdf(x)
    wrong = LinearGaussian(model.W, model.mu, model.psi * (1 + 1e-9))
    assert rel_err(log_marginal(wrong, x), ref) > 1e-12


def test_densities_factorise_as_bayes_rule():
    """log p(z) + log p(x|z) - log p(z|x) = log p(x) at every z; (LG.3)."""
    rng = np.random.default_rng(12)
    model = random_model(rng, 5, 2)
    x = random_data(rng, model, 1)[0]
    z = 2.0 * rng.standard_normal((30, 2))
    joint = log_joint(model, x, z)
    np.testing.assert_allclose(joint, log_prior(model, z) + log_lik(model, x, z))
    lhs = joint - log_posterior(model, x, z)
    assert rel_err(lhs, log_marginal(model, x[None, :])[0]) <= 1e-12
    ref = multivariate_normal(model.W @ z[0] + model.mu, np.diag(model.psi))
    assert rel_err(log_lik(model, x, z[:1]), ref.logpdf(x)) <= 1e-12


# ---------------------------------------------------------------------------
# ELBO, KL gap, expected complete-data log-likelihood.


@pytest.mark.parametrize("q_form", ["shared", "batched", "diag"])
def test_log_marginal_equals_elbo_plus_kl(q_form):
    """log p(x) = ELBO(q) + KL(q || p(z|x)), KL from the Gaussian KL (LG.16)."""
    rng = np.random.default_rng(20)
    model = random_model(rng, 6, 3)
    x = random_data(rng, model, 8)
    m_q = rng.standard_normal((8, 3))
    q = random_q(rng, 8, 3)[q_form]
    lhs = log_marginal(model, x)
    gap = kl_to_posterior(model, x, m_q, **q)
    assert np.all(gap > 0)
    np.testing.assert_allclose(elbo(model, x, m_q, **q) + gap, lhs, rtol=1e-10, atol=0)


def test_kl_to_posterior_matches_refvi_gaussian_kl_per_datum():
    rng = np.random.default_rng(21)
    model = random_model(rng, 4, 2)
    x = random_data(rng, model, 3)
    m_q, L_q = rng.standard_normal((3, 2)), random_L(rng, 3, 2)
    post = posterior(model, x)
    want = [
        kl(
            Gaussian(m_q[i], scale_tril=L_q[i]),
            Gaussian(post.m[i], scale_tril=post.L_S),
        )
        for i in range(3)
    ]
    assert rel_err(kl_to_posterior(model, x, m_q, L_q), np.array(want)) <= 1e-12


def test_kl_is_zero_at_the_posterior_and_positive_elsewhere():
    rng = np.random.default_rng(22)
    model = random_model(rng, 5, 2)
    x = random_data(rng, model, 6)
    post = posterior(model, x)
    at_post = kl_to_posterior(model, x, post.m, post.L_S)
    assert np.max(np.abs(at_post)) <= 1e-12
    np.testing.assert_allclose(
        elbo(model, x, post.m, post.L_S), log_marginal(model, x), rtol=1e-13
    )
    for scale in (1e-3, 1e-1):
        moved = post.m + scale * rng.standard_normal(post.m.shape)
        assert np.all(kl_to_posterior(model, x, moved, post.L_S) > 0)
        assert np.all(kl_to_posterior(model, x, post.m, post.L_S * (1 + scale)) > 0)


def test_elbo_is_ecll_plus_entropy():
    rng = np.random.default_rng(23)
    model = random_model(rng, 4, 2)
    x = random_data(rng, model, 5)
    m_q, L_q = rng.standard_normal((5, 2)), random_L(rng, 5, 2)
    H = np.array([entropy(Gaussian(m_q[i], scale_tril=L_q[i])) for i in range(5)])
    np.testing.assert_allclose(
        elbo(model, x, m_q, L_q),
        expected_complete_loglik(model, x, m_q, L_q) + H,
        rtol=1e-14,
    )


@pytest.mark.parametrize("q_form", ["shared", "batched", "diag"])
def test_value_only_elbo_and_ecll_skip_the_backward_pass(q_form, monkeypatch):
    import refvi.models.linear_gaussian as lg

    rng = np.random.default_rng(24)
    model = random_model(rng, 4, 2)
    x = random_data(rng, model, 5)
    m_q = rng.standard_normal((5, 2))
    q = random_q(rng, 5, 2)[q_form]
    with_grad = {
        fn: fn_and_grad(model, x, m_q, **q)[0]
        for fn, fn_and_grad in (
            (elbo, elbo_and_grad),
            (expected_complete_loglik, expected_complete_loglik_and_grad),
        )
    }

    def no_backward(*args):
        raise AssertionError("a value-only call ran the backward pass")

    monkeypatch.setattr(lg, "_ecll_grad", no_backward)
    monkeypatch.setattr(lg, "_entropy_grad", no_backward)
    for fn, value in with_grad.items():
        np.testing.assert_array_equal(fn(model, x, m_q, **q), value)


# ---------------------------------------------------------------------------
# Gradients by central differences.


def _model_fn(fn, x, dout, **fixed):
    """f(params) -> (sum dout * value, grads) for gradcheck, params by name."""

    def f(p):
        model = LinearGaussian(p["W"], p["mu"], p["psi"])
        q = {key: p[key] for key in ("m_q", "L_q", "log_std_q") if key in p}
        q.update(fixed)
        value, grads = fn(model, x, **q, dout=dout)
        return float(dout @ value), grads

    return f


@pytest.mark.parametrize("noise", ["diag", "isotropic"])
def test_log_marginal_gradient_matches_finite_differences(noise):
    rng = np.random.default_rng(30)
    model = random_model(rng, 5, 2, noise)
    x = random_data(rng, model, 7)
    dout = rng.standard_normal(7)
    params = {"W": model.W, "mu": model.mu, "psi": model.psi}
    f = _model_fn(lambda m, x, dout: log_marginal_and_grad(m, x, dout), x, dout)
    assert_gradcheck(f, params, rtol=1e-7)
    assert taylor_test(f, params, np.random.default_rng(31)).ok


@pytest.mark.parametrize("q_form", ["shared", "batched", "diag"])
@pytest.mark.parametrize(
    "fn", [elbo_and_grad, expected_complete_loglik_and_grad], ids=["elbo", "ecll"]
)
def test_elbo_and_ecll_gradients_match_finite_differences(fn, q_form):
    rng = np.random.default_rng(32)
    model = random_model(rng, 5, 3)
    x = random_data(rng, model, 6)
    dout = rng.standard_normal(6)
    params = {"W": model.W, "mu": model.mu, "psi": model.psi}
    params["m_q"] = rng.standard_normal((6, 3))
    if q_form == "shared":
        params["L_q"] = random_L(rng, 3)
    elif q_form == "batched":
        params["L_q"] = random_L(rng, 6, 3)
    else:
        params["log_std_q"] = 0.4 * rng.standard_normal((6, 3))
    f = _model_fn(fn, x, dout)
    assert_gradcheck(f, params, rtol=1e-7)
    if q_form == "batched":
        assert taylor_test(f, params, np.random.default_rng(33)).ok


def test_gradcheck_catches_a_wrong_psi_gradient():
    """The checker fails if d/dpsi were w.r.t. the standard deviation."""
    rng = np.random.default_rng(34)
    model = random_model(rng, 4, 2)
    x = random_data(rng, model, 5)
    dout = np.ones(5)

    def wrong(p):
        value, grads = _model_fn(
            lambda m, x, dout: log_marginal_and_grad(m, x, dout), x, dout
        )(p)
        grads = dict(grads, psi=grads["psi"] * 2 * np.sqrt(p["psi"]))
        return value, grads

    result = gradcheck(wrong, {"W": model.W, "mu": model.mu, "psi": model.psi})
    assert not result.ok and "psi" in result.message


def test_fisher_identity_grad_log_marginal_is_grad_elbo_at_posterior():
    """grad_theta log p(x) = grad_theta ELBO(q, theta) at q = p(z|x; theta); (LG.17)."""
    rng = np.random.default_rng(35)
    model = random_model(rng, 6, 2)
    x = random_data(rng, model, 9)
    dout = rng.standard_normal(9)
    post = posterior(model, x)
    _, g_marg = log_marginal_and_grad(model, x, dout=dout)
    _, g_elbo = elbo_and_grad(model, x, post.m, post.L_S, dout=dout)
    for name in ("W", "mu", "psi"):
        scale = np.max(np.abs(g_marg[name]))
        assert np.max(np.abs(g_marg[name] - g_elbo[name])) <= 1e-12 * scale, name
    # and the q-gradients of the ELBO vanish there (q is the maximiser)
    assert np.max(np.abs(g_elbo["m_q"])) <= 1e-12 * np.max(np.abs(g_elbo["W"]))
    assert np.max(np.abs(g_elbo["L_q"])) <= 1e-12 * np.max(np.abs(g_elbo["W"]))
    # a q away from the posterior gives a different gradient: the check can fail
    _, g_off = elbo_and_grad(model, x, post.m + 0.1, post.L_S, dout=dout)
    assert np.max(np.abs(g_marg["W"] - g_off["W"])) > 1e-3


# ---------------------------------------------------------------------------
# Quadrature: p(x) = int p(x|z) p(z) dz, posterior moments, ELBO as E_q[...].


def _posterior_moments_by_quadrature(model, x, center, sd, order=48):
    """Mean and covariance of p(z | x) = p(x, z) / p(x) by quadrature.

    Gauss-Hermite under a proposal N(center, diag(sd^2)) that is *not* the
    posterior, with the importance ratio p(x, z) / N(z; center, sd^2): the
    integrand is a smooth non-polynomial function, so this is a numerical
    integral, exact only in the limit. Returns (mean, covariance).
    """
    k = model.k
    L_prop = np.diag(sd)
    c = log_joint(model, x, center[None, :])[0]

    def f(z):
        w = np.exp(log_joint(model, x, z) - c - _log_prob_chol(z, center, L_prop))
        u = z - center
        uu = (u[:, :, None] * u[:, None, :]).reshape(-1, k * k)
        return w[:, None] * np.hstack([np.ones((len(z), 1)), u, uu])

    v = expect_gaussian(f, center, L_prop, order=order).value
    first = v[1 : k + 1] / v[0]
    second = v[k + 1 :].reshape(k, k) / v[0]
    return center + first, second - np.outer(first, first)


@pytest.mark.parametrize("k", [1, 2])
def test_log_marginal_matches_adaptive_quadrature(k):
    """log p(x) = log int p(x|z) p(z) dz by adaptive quadrature, to 1e-10."""
    rng = np.random.default_rng(40 + k)
    model = random_model(rng, 4, k)
    x = random_data(rng, model, 1) + rng.standard_normal((1, 4))
    post = posterior(model, x)
    # a rough centre and width to place the nodes near the mass
    center = np.round(post.m[0], 1)
    c = log_joint(model, x[0], center[None, :])[0]
    Z = integrate(
        lambda z: np.exp(log_joint(model, x[0], z) - c),
        k,
        center=center,
        scale=2 * np.sqrt(np.diag(post.S)),
    )
    log_px = log_marginal(model, x)[0]
    assert abs(c + np.log(Z.value) - log_px) <= 1e-10  # = relative error of p(x)
    wrong = LinearGaussian(model.W, model.mu, model.psi * (1 + 1e-8))
    assert abs(c + np.log(Z.value) - log_marginal(wrong, x)[0]) > 1e-10


@pytest.mark.parametrize("k", [1, 2])
def test_posterior_matches_quadrature_moments(k):
    """Posterior mean and covariance = moments of p(x, z) / p(x), to 1e-10."""
    rng = np.random.default_rng(50 + k)
    model = random_model(rng, 4, k)
    x = random_data(rng, model, 3) + rng.standard_normal((3, 4))
    post = posterior(model, x)
    sd = np.sqrt(np.diag(post.S))
    for i in range(3):
        mean, cov = _posterior_moments_by_quadrature(
            model, x[i], np.round(post.m[i], 1), 1.5 * sd
        )
        assert np.max(np.abs(mean - post.m[i])) <= 1e-10 * max(1, np.max(sd))
        assert np.max(np.abs(cov - post.S)) <= 1e-10 * np.max(post.S)


def test_posterior_quadrature_check_fails_for_a_wrong_posterior():
    """The moment check sees S = (W^T Psi^-1 W)^-1, which dropped the prior's I."""
    rng = np.random.default_rng(53)
    model = random_model(rng, 4, 1)
    x = random_data(rng, model, 1)
    post = posterior(model, x)
    wrong_S = 1.0 / (model.W[:, 0] @ (model.W[:, 0] / model.psi))
    _, cov = _posterior_moments_by_quadrature(
        model, x[0], np.round(post.m[0], 1), 1.5 * np.sqrt(np.diag(post.S))
    )
    assert abs(cov[0, 0] - post.S[0, 0]) <= 1e-10 * post.S[0, 0]
    assert abs(cov[0, 0] - wrong_S) > 1e-10 * post.S[0, 0]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_log_marginal_matches_gauss_hermite_under_the_prior(k):
    """log p(x) = log E_{p(z)} p(x|z) by Gauss-Hermite (exact nodes, k <= 3)."""
    rng = np.random.default_rng(44 + k)
    model = LinearGaussian(
        0.5 * rng.standard_normal((3, k)), rng.standard_normal(3), np.full(3, 2.0)
    )
    x = random_data(rng, model, 3)
    for i in range(3):
        got = log_expect_gaussian(
            lambda z, i=i: log_lik(model, x[i], z), np.zeros(k), np.eye(k)
        )
        assert abs(got.value - log_marginal(model, x[i : i + 1])[0]) <= 1e-10


@pytest.mark.parametrize("q_form", ["shared", "batched", "diag"])
def test_elbo_matches_quadrature_of_its_definition(q_form):
    """ELBO(q) = E_q[log p(x, z) - log q(z)] by Gauss-Hermite under q, to 1e-10."""
    rng = np.random.default_rng(47)
    model = random_model(rng, 5, 2)
    x = random_data(rng, model, 3)
    m_q = rng.standard_normal((3, 2))
    if q_form == "diag":
        log_std_q = 0.5 * rng.standard_normal((3, 2))
        qs = [
            Gaussian(m_q[i], scale_tril=np.diag(np.exp(log_std_q[i]))) for i in range(3)
        ]
        value = elbo(model, x, m_q, log_std_q=log_std_q)
    else:
        L_q = random_L(rng, 2) if q_form == "shared" else random_L(rng, 3, 2)
        L_i = [L_q] * 3 if q_form == "shared" else list(L_q)
        qs = [Gaussian(m_q[i], scale_tril=L_i[i]) for i in range(3)]
        value = elbo(model, x, m_q, L_q)
    for i, q in enumerate(qs):
        ref = expect_gaussian(
            lambda z, i=i, q=q: log_joint(model, x[i], z) - log_prob(q, z),
            q.mean,
            q.scale_tril,
        )
        assert abs(value[i] - ref.value) <= 1e-10 * abs(ref.value)
