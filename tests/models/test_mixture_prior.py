"""Mixture-prior linear-Gaussian model: every closed form against another route.

Routes: a dense naive density written from the model definition (MP.1) and
integrated over z by adaptive quadrature (refvi.verify.quadrature.integrate)
for log p(x); importance-weighted Gauss-Hermite of that density for the
posterior moments and responsibilities; dense inverse formulas for S_j, m_j
and C_j; the linear-Gaussian closed forms when the prior has one standard
component; Monte Carlo within 5 standard errors for the ELBO and the KL.
"""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from refvi.gaussian import Gaussian, _log_prob_chol
from refvi.models import linear_gaussian as lg
from refvi.models.mixture import GaussianMixture
from refvi.models.mixture_prior import (
    MixturePrior,
    elbo_montecarlo,
    elbo_quadrature,
    kl_to_posterior_montecarlo,
    kl_to_posterior_quadrature,
    log_joint,
    log_lik,
    log_marginal,
    log_posterior,
    log_prior,
    marginal,
    posterior,
)
from refvi.verify.montecarlo import MCEstimate, assert_z_test, z_test
from refvi.verify.quadrature import expect_gaussian, integrate

LOG_2PI = np.log(2 * np.pi)


def random_L(rng, *shape, scale=1.0):
    """Lower-triangular factors with a positive diagonal, shape (*shape, k, k)."""
    k = shape[-1]
    A = np.tril(0.3 * rng.standard_normal(shape + (k,)), k=-1)
    return scale * (A + rng.uniform(0.5, 1.2, size=shape)[..., None] * np.eye(k))


def random_model(rng, k, J=2, d=3):
    """Well separated prior components, so the posterior is genuinely multimodal."""
    weights = rng.dirichlet(np.full(J, 3.0))
    a = 1.5 * rng.standard_normal((J, k))
    L_B = random_L(rng, J, k, scale=0.6)
    W = 0.8 * rng.standard_normal((d, k))
    return MixturePrior(
        weights, a, L_B, W, rng.standard_normal(d), rng.uniform(0.4, 1.0, size=d)
    )


def random_datum(rng, model):
    j = rng.choice(model.J, p=model.weights)
    z = model.a[j] + model.L_B[j] @ rng.standard_normal(model.k)
    return model.W @ z + model.mu + np.sqrt(model.psi) * rng.standard_normal(model.d)


def dense_covariances(L):
    return L @ np.swapaxes(L, -1, -2)


def naive_log_joint(model, x):
    """z (m, k) -> log p(x, z) written densely from (MP.1): the quadrature oracle.

    Uses explicit inverses and slogdet on purpose (an independent, naive
    route); precomputes them once because adaptive quadrature calls it ~1e5
    times with single points.
    """
    k, d = model.k, model.d
    B = dense_covariances(model.L_B)
    B_inv = np.linalg.inv(B)
    const_prior = np.log(model.weights) - 0.5 * (k * LOG_2PI + np.linalg.slogdet(B)[1])
    const_lik = -0.5 * (d * LOG_2PI + np.sum(np.log(model.psi)))
    resid0, Wt, inv_psi = x - model.mu, model.W.T.copy(), 1.0 / model.psi
    a = model.a[:, None, :]

    def f(z):
        diff = z[None, :, :] - a  # (J, m, k)
        t = const_prior - 0.5 * np.sum((diff @ B_inv) * diff, axis=-1).T  # (m, J)
        top = t.max(axis=1, keepdims=True)
        log_prior_z = (top + np.log(np.exp(t - top).sum(axis=1, keepdims=True)))[:, 0]
        r = resid0 - z @ Wt
        return log_prior_z + const_lik - 0.5 * ((r * r) @ inv_psi)

    return f


def mixture_moments(post_i):
    """Mean and covariance of a GaussianMixture."""
    w, m, S = post_i.weights, post_i.means, dense_covariances(post_i.L)
    mean = w @ m
    second = np.einsum("j,jab->ab", w, S + m[:, :, None] * m[:, None, :])
    return mean, second - np.outer(mean, mean)


def log_marginal_by_integration(model, x, center, scale):
    """log p(x) = log int exp(log p(x, z)) dz by adaptive quadrature (MP.14)."""
    f = naive_log_joint(model, x)
    c = f(center[None, :])[0]
    Z = integrate(lambda z: np.exp(f(z) - c), model.k, center=center, scale=scale)
    return c + np.log(Z.value), Z.error / Z.value


@pytest.fixture(scope="module", params=[1, 2], ids=["k1", "k2"])
def case(request):
    """A model, a datum, and log p(x) by adaptive quadrature (computed once per k)."""
    k = request.param
    rng = np.random.default_rng(100 + k)
    model = random_model(rng, k)
    x = random_datum(rng, model)
    mean, cov = mixture_moments(posterior(model, x[None, :]).mixture(0))
    # centre and width only place QUADPACK's nodes near the mass
    log_px, rel_error = log_marginal_by_integration(
        model, x, np.round(mean, 1), 2 * np.sqrt(np.diag(cov))
    )
    assert rel_error < 1e-11
    return model, x, log_px


# ---------------------------------------------------------------------------
# Parameters and validation.


def test_model_is_frozen_read_only_and_copies_its_input():
    rng = np.random.default_rng(0)
    model = random_model(rng, 2)
    a = model.a.copy()
    m2 = MixturePrior(model.weights, a, model.L_B, model.W, model.mu, model.psi)
    a[0, 0] = 99.0
    assert m2.a[0, 0] == model.a[0, 0]
    with pytest.raises(ValueError, match="read-only"):
        m2.W[0, 0] = 1.0
    with pytest.raises(AttributeError):
        m2.a = a
    assert (m2.J, m2.k, m2.d) == (2, 2, 3)
    assert isinstance(m2.prior, GaussianMixture)
    np.testing.assert_array_equal(m2.prior.means, m2.a)


def _good_args():
    return dict(
        weights=np.array([0.4, 0.6]),
        a=np.zeros((2, 2)),
        L_B=np.stack([np.eye(2), 2 * np.eye(2)]),
        W=np.ones((3, 2)),
        mu=np.zeros(3),
        psi=np.ones(3),
    )


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("weights", [0.4, 0.5], "weights must sum to one"),
        ("weights", [1.2, -0.2], "weights must be non-negative"),
        ("weights", [np.nan, 0.6], "weights contains NaN"),
        ("a", np.zeros((3, 2)), r"a must have shape \(2, \*\)"),
        ("a", [[0.0, np.inf], [0.0, 0.0]], "a contains NaN or inf"),
        ("L_B", np.zeros((2, 2, 2)), r"L_B\[0\] must have a positive diagonal"),
        ("L_B", [np.eye(2), [[1.0, 0.5], [0.0, 1.0]]], r"L_B\[1\] must be lower"),
        ("L_B", np.ones((2, 3, 3)), r"L_B must have shape \(2, 2, 2\)"),
        ("W", np.ones((3, 1)), "W must have k = 2 columns"),
        ("mu", np.zeros(2), r"mu must have shape \(3,\)"),
        ("psi", [1.0, -1.0, 1.0], "psi must be positive"),
        ("psi", [1.0, np.nan, 1.0], "psi contains NaN"),
    ],
)
def test_bad_parameters_raise_naming_the_argument(name, value, match):
    args = _good_args()
    args[name] = value
    with pytest.raises(ValueError, match=match):
        MixturePrior(**args)


def test_non_positive_definite_covariance_raises_naming_it():
    args = _good_args()
    del args["L_B"]
    B = np.stack([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])  # eigenvalues 3, -1
    with pytest.raises(ValueError, match=r"B\[1\] must be positive definite"):
        MixturePrior.from_covariances(B=B, **args)
    ok = MixturePrior.from_covariances(B=np.stack([np.eye(2), 4 * np.eye(2)]), **args)
    np.testing.assert_array_equal(ok.L_B, _good_args()["L_B"])


def test_bad_data_and_arguments_raise_naming_the_argument():
    model = MixturePrior(**_good_args())
    q = Gaussian(np.zeros(2), scale_tril=np.eye(2))
    x_nan = np.array([0.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="x contains NaN"):
        log_marginal(model, x_nan[None, :])
    with pytest.raises(ValueError, match="x contains NaN"):
        posterior(model, x_nan[None, :])
    with pytest.raises(ValueError, match="x contains NaN"):
        elbo_quadrature(model, x_nan[None, :], q)
    with pytest.raises(ValueError, match="x contains NaN"):
        kl_to_posterior_montecarlo(model, x_nan[None, :], q, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 3\)"):
        log_marginal(model, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"x must have shape \(3,\)"):
        log_joint(model, np.zeros(2), np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"z must have shape \(\*, 2\)"):
        log_prior(model, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="z contains NaN"):
        log_posterior(model, np.zeros(3), np.full((1, 2), np.nan))
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="q must have the latent dimension k = 2"):
        elbo_quadrature(model, x, Gaussian(np.zeros(3), scale_tril=np.eye(3)))
    with pytest.raises(TypeError, match="q must be a Gaussian"):
        elbo_quadrature(model, x, (np.zeros(2), np.eye(2)))
    with pytest.raises(ValueError, match="q must be one Gaussian or a batch of n = 2"):
        kl_to_posterior_quadrature(model, x, Gaussian(np.zeros((3, 2)), log_std=[0, 0]))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        kl_to_posterior_montecarlo(model, x, q, rng=0)
    with pytest.raises(ValueError, match="n_samples must be >= 2"):
        elbo_montecarlo(model, x, q, np.random.default_rng(0), 1)
    with pytest.raises(TypeError, match="model must be a MixturePrior"):
        log_marginal(
            lg.LinearGaussian(np.ones((3, 2)), np.zeros(3), np.ones(3)), [[0, 0, 0]]
        )


def test_nothing_mutates_its_inputs():
    rng = np.random.default_rng(1)
    model = random_model(rng, 2)
    x = rng.standard_normal((4, 3))
    z = rng.standard_normal((5, 2))
    q = Gaussian(np.zeros(2), scale_tril=np.eye(2))
    before = [a.copy() for a in (x, z)]
    log_marginal(model, x)
    posterior(model, x)
    log_posterior(model, x[0], z)
    log_joint(model, x[0], z)
    elbo_quadrature(model, x, q, order=8)
    kl_to_posterior_montecarlo(model, x, q, rng, 10)
    for a, b in zip((x, z), before, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# Closed forms against dense formulas.


def test_marginal_cholesky_matches_dense_covariance():
    """L_C L_C^T = W B_j W^T + diag(psi) with B_j = L_B L_B^T formed densely (MP.4)."""
    rng = np.random.default_rng(2)
    model = random_model(rng, 2, J=3, d=4)
    gm = marginal(model)
    B = dense_covariances(model.L_B)
    for j in range(model.J):
        C = model.W @ B[j] @ model.W.T + np.diag(model.psi)
        np.testing.assert_allclose(
            dense_covariances(gm.L[j]), C, rtol=1e-12, atol=1e-14
        )
        np.testing.assert_allclose(
            gm.means[j], model.W @ model.a[j] + model.mu, rtol=1e-14
        )
    x = rng.standard_normal((5, 4))
    dense = logsumexp(
        [
            np.log(model.weights[j])
            + multivariate_normal(gm.means[j], dense_covariances(gm.L[j])).logpdf(x)
            for j in range(model.J)
        ],
        axis=0,
    )
    np.testing.assert_allclose(log_marginal(model, x), dense, rtol=1e-12)


def test_posterior_matches_dense_inverse_formulas():
    """Dense (MP.7): S_j = (B_j^-1 + W^T Psi^-1 W)^-1,
    m_j = S_j (B_j^-1 a_j + W^T Psi^-1 (x - mu)), against the factored (MP.8)-(MP.9)."""
    rng = np.random.default_rng(3)
    model = random_model(rng, 3, J=3, d=5)
    x = rng.standard_normal((4, 5))
    post = posterior(model, x)
    B = dense_covariances(model.L_B)
    P = model.W.T @ np.diag(1.0 / model.psi)
    for j in range(model.J):
        S = np.linalg.inv(np.linalg.inv(B[j]) + P @ model.W)
        np.testing.assert_allclose(
            dense_covariances(post.L_S[j]), S, rtol=1e-12, atol=1e-14
        )
        assert np.allclose(post.L_S[j], np.tril(post.L_S[j]))
        assert np.all(np.diag(post.L_S[j]) > 0)
        m = (S @ (np.linalg.solve(B[j], model.a[j])[:, None] + P @ (x - model.mu).T)).T
        np.testing.assert_allclose(post.m[:, j], m, rtol=1e-12, atol=1e-13)
    # (MP.6) responsibilities from the dense marginal components
    C = model.W @ B @ model.W.T + np.diag(model.psi)
    lj = np.stack(
        [
            np.log(model.weights[j])
            + multivariate_normal(model.W @ model.a[j] + model.mu, C[j]).logpdf(x)
            for j in range(model.J)
        ],
        axis=1,
    )
    np.testing.assert_allclose(
        post.log_weights,
        lj - logsumexp(lj, axis=1, keepdims=True),
        rtol=1e-12,
        atol=1e-13,
    )


def test_posterior_over_a_batch_equals_a_loop_over_data():
    rng = np.random.default_rng(4)
    model = random_model(rng, 2, J=3)
    x = rng.standard_normal((6, 3))
    post = posterior(model, x)
    for i in range(6):
        one = posterior(model, x[i : i + 1])
        np.testing.assert_array_equal(one.L_S, post.L_S)
        np.testing.assert_allclose(one.m[0], post.m[i], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(one.log_weights[0], post.log_weights[i], atol=1e-14)


def test_densities_factorise_as_bayes_rule():
    """log p(z|x) = log p(x,z) - log p(x); log p(x,z) = the dense naive density."""
    rng = np.random.default_rng(5)
    model = random_model(rng, 2, J=3)
    x = random_datum(rng, model)
    z = rng.standard_normal((7, 2))
    joint = log_joint(model, x, z)
    np.testing.assert_allclose(
        joint, log_prior(model, z) + log_lik(model, x, z), rtol=1e-14
    )
    np.testing.assert_allclose(joint, naive_log_joint(model, x)(z), rtol=1e-12)
    gap = log_posterior(model, x, z) - (joint - log_marginal(model, x[None, :])[0])
    assert np.max(np.abs(gap)) <= 1e-12


def test_one_standard_component_reduces_to_the_linear_gaussian_model():
    """J = 1, a = 0, B = I: marginal, posterior and KL gap are the LG closed forms."""
    rng = np.random.default_rng(6)
    W, mu, psi = (
        rng.standard_normal((4, 2)),
        rng.standard_normal(4),
        rng.uniform(0.3, 1, 4),
    )
    model = MixturePrior([1.0], np.zeros((1, 2)), np.eye(2)[None], W, mu, psi)
    ref = lg.LinearGaussian(W, mu, psi)
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(
        log_marginal(model, x), lg.log_marginal(ref, x), rtol=1e-12
    )
    post, post_ref = posterior(model, x), lg.posterior(ref, x)
    np.testing.assert_allclose(post.m[:, 0], post_ref.m, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(post.L_S[0], post_ref.L_S, rtol=1e-12)
    q = Gaussian(rng.standard_normal(2), scale_tril=random_L(rng, 2))
    kl = kl_to_posterior_quadrature(model, x, q)
    m_q = np.broadcast_to(q.mean, (3, 2))
    kl_ref = lg.kl_to_posterior(ref, x, m_q, q.scale_tril)
    assert np.all(np.abs(kl.value - kl_ref) <= 1e-10 * kl_ref)
    assert np.all(kl.error <= 1e-10 * kl_ref)
    e = elbo_quadrature(model, x, q)
    e_ref = lg.elbo(ref, x, m_q, q.scale_tril)
    assert np.all(np.abs(e.value - e_ref) <= 1e-10 * np.abs(e_ref))


def test_kl_is_zero_at_the_posterior_of_a_one_component_prior():
    rng = np.random.default_rng(7)
    model = random_model(rng, 2, J=1)
    x = random_datum(rng, model)
    post = posterior(model, x[None, :])
    q = Gaussian(post.m[0, 0], scale_tril=post.L_S[0])
    assert abs(kl_to_posterior_quadrature(model, x[None, :], q).value[0]) <= 1e-12
    e = elbo_quadrature(model, x[None, :], q).value[0]
    assert abs(e - log_marginal(model, x[None, :])[0]) <= 1e-12 * abs(e)


# ---------------------------------------------------------------------------
# Quadrature: log p(x) = int p(x, z) dz, posterior = p(x, z) / p(x).


def test_log_marginal_matches_adaptive_quadrature(case):
    """log p(x) (MP.3) = log int p(x|z) p(z) dz by adaptive quadrature, to 1e-10."""
    model, x, log_px = case
    assert (
        abs(log_marginal(model, x[None, :])[0] - log_px) <= 1e-10
    )  # rel. err. of p(x)
    wrong = MixturePrior(
        model.weights, model.a, model.L_B, model.W, model.mu, model.psi * (1 + 1e-8)
    )
    assert abs(log_marginal(wrong, x[None, :])[0] - log_px) > 1e-10


def posterior_by_quadrature(model, x, log_px, center, sd, order=80):
    """Moments of p(x, z) / p(x), and each component's share, by Gauss-Hermite.

    Importance-weighted under the proposal N(center, diag(sd^2)), which is not
    the posterior: the integrand is smooth but not polynomial, so this is a
    numerical integral. Returns (mean, covariance, component masses (J,),
    the error estimate of the raw integrals).
    """
    k, J = model.k, model.J
    L_prop = np.diag(sd)
    f_joint = naive_log_joint(model, x)
    B = dense_covariances(model.L_B)

    def f(z):
        log_ratio = f_joint(z) - log_px - _log_prob_chol(z, center, L_prop)
        w = np.exp(log_ratio)
        # share of component j: pi_j N(z; a_j, B_j) / p(z), written out densely
        log_comp = np.stack(
            [
                np.log(model.weights[j])
                + multivariate_normal(model.a[j], B[j]).logpdf(z)
                for j in range(J)
            ],
            axis=1,
        ).reshape(len(z), J)
        share = np.exp(log_comp - logsumexp(log_comp, axis=1, keepdims=True))
        zz = (z[:, :, None] * z[:, None, :]).reshape(-1, k * k)
        return w[:, None] * np.hstack([np.ones((len(z), 1)), z, zz, share])

    res = expect_gaussian(f, center, L_prop, order=order)
    v = res.value
    mean = v[1 : k + 1]
    cov = v[k + 1 : k + 1 + k * k].reshape(k, k) - np.outer(mean, mean)
    return v[0], mean, cov, v[k + 1 + k * k :], np.max(res.error)


def test_posterior_matches_quadrature_of_joint_over_marginal(case):
    """Mixture posterior (MP.5)-(MP.9): its mass, mean, covariance, component
    weights and pointwise density equal those of p(x, z) / p(x), to 1e-10."""
    model, x, log_px = case
    post = posterior(model, x[None, :])
    post_i = post.mixture(0)
    mean, cov = mixture_moments(post_i)
    sd = np.sqrt(np.diag(cov))
    mass, q_mean, q_cov, q_share, err = posterior_by_quadrature(
        model, x, log_px, np.round(mean, 1), 1.5 * sd
    )
    assert err <= 1e-11
    scale = max(1.0, np.max(np.abs(mean)))
    assert abs(mass - 1.0) <= 1e-10
    assert np.max(np.abs(q_mean - mean)) <= 1e-10 * scale
    assert np.max(np.abs(q_cov - cov)) <= 1e-10 * scale**2
    assert np.max(np.abs(q_share - post_i.weights)) <= 1e-10
    # pointwise: log p(z|x) = log p(x, z) - log p(x) (quadrature log p(x))
    z = mean + sd * np.random.default_rng(8).standard_normal((9, model.k))
    expected = naive_log_joint(model, x)(z) - log_px
    assert np.max(np.abs(log_posterior(model, x, z) - expected)) <= 1e-10


def test_posterior_quadrature_check_fails_for_a_wrong_posterior(case):
    """The quadrature moments reject the prior weights in place of the
    responsibilities, and precision where the covariance belongs."""
    model, x, log_px = case
    post_i = posterior(model, x[None, :]).mixture(0)
    mean, cov = mixture_moments(post_i)
    _, q_mean, q_cov, q_share, _ = posterior_by_quadrature(
        model, x, log_px, np.round(mean, 1), 1.5 * np.sqrt(np.diag(cov))
    )
    assert np.max(np.abs(q_share - model.weights)) > 1e-3
    wrong_mean, _ = mixture_moments(
        GaussianMixture(model.weights, post_i.means, post_i.L)
    )
    assert np.max(np.abs(q_mean - wrong_mean)) > 1e-10
    precision = np.linalg.inv(dense_covariances(post_i.L))
    _, wrong_cov = mixture_moments(
        GaussianMixture.from_covariances(post_i.weights, post_i.means, precision)
    )
    assert np.max(np.abs(q_cov - wrong_cov)) > 1e-10


# ---------------------------------------------------------------------------
# ELBO and KL(q || p(z|x)): quadrature identity and Monte Carlo.


def _q_for(model, x, rng):
    """A Gaussian q near, but not at, the posterior (moment match plus noise)."""
    mean, cov = mixture_moments(posterior(model, x[None, :]).mixture(0))
    L = np.linalg.cholesky(cov) * rng.uniform(0.6, 1.0)
    return Gaussian(mean + 0.3 * rng.standard_normal(model.k), scale_tril=L)


def test_log_marginal_minus_elbo_equals_kl_by_quadrature(case):
    """log p(x) (adaptive quadrature) - ELBO(q) (Gauss-Hermite) = KL(q || p(z|x))
    (Gauss-Hermite against the closed-form posterior), to 1e-8 (MP.11)."""
    model, x, log_px = case
    q = _q_for(model, x, np.random.default_rng(9))
    order = {1: 80, 2: 48}[model.k]  # enough nodes for an error estimate <= 1e-9
    e = elbo_quadrature(model, x[None, :], q, order=order)
    kl = kl_to_posterior_quadrature(model, x[None, :], q, order=order)
    assert kl.value[0] > 0.01  # a q that is not the posterior
    assert e.error[0] <= 1e-9 and kl.error[0] <= 1e-9
    assert abs((log_px - e.value[0]) - kl.value[0]) <= 1e-8
    # the identity fails when the KL is taken to a wrong posterior
    other = random_model(np.random.default_rng(10), model.k)
    wrong = kl_to_posterior_quadrature(other, x[None, :], q, order=order).value[0]
    assert abs((log_px - e.value[0]) - wrong) > 1e-8


def test_montecarlo_agrees_with_quadrature_within_5_standard_errors(case):
    model, x, log_px = case
    q = _q_for(model, x, np.random.default_rng(11))
    rng = np.random.default_rng(12)
    x = x[None, :]
    e_mc = elbo_montecarlo(model, x, q, rng, n_samples=20_000)
    kl_mc = kl_to_posterior_montecarlo(model, x, q, rng, n_samples=20_000)
    e = elbo_quadrature(model, x, q).value
    kl = kl_to_posterior_quadrature(model, x, q).value
    assert_z_test(e_mc, e)
    assert_z_test(kl_mc, kl)
    # log p(x) - ELBO by Monte Carlo (same standard error) against KL by quadrature
    assert_z_test(MCEstimate(log_px - e_mc.mean, e_mc.se, e_mc.n), kl)
    # a checker that cannot fail is a defect: a shifted target is rejected
    assert not z_test(kl_mc, kl + 10 * kl_mc.se).ok


def test_montecarlo_is_reproducible_and_accepts_a_diagonal_q():
    rng_model = np.random.default_rng(13)
    model = random_model(rng_model, 2)
    x = random_datum(rng_model, model)
    q = Gaussian(np.zeros(2), log_std=np.array([-0.2, 0.1]))
    x = x[None, :]
    a = elbo_montecarlo(model, x, q, np.random.default_rng(5), 500)
    b = elbo_montecarlo(model, x, q, np.random.default_rng(5), 500)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert_z_test(a, elbo_quadrature(model, x, q.to_full()).value)


def test_batched_q_matches_one_datum_at_a_time():
    rng = np.random.default_rng(14)
    model = random_model(rng, 2)
    x = np.stack([random_datum(rng, model) for _ in range(3)])
    L = np.stack([random_L(rng, 2) for _ in range(3)])
    q = Gaussian(rng.standard_normal((3, 2)), scale_tril=L)
    for f in (elbo_quadrature, kl_to_posterior_quadrature):
        batch = f(model, x, q, order=12)
        for i in range(3):
            one = f(model, x[i : i + 1], Gaussian(q.mean[i], scale_tril=L[i]), order=12)
            assert abs(batch.value[i] - one.value[0]) <= 1e-13 * abs(one.value[0])
