"""refvi.gaussian: every closed form against another route.

Routes: scipy.stats (log_prob), Gauss-Hermite quadrature of scipy's log-density
(entropy, KL; tolerance 1e-10 relative), Monte Carlo at fixed seeds (within 5
standard errors), central differences and Taylor remainders (gradients, 1e-7
relative). Each checker is shown to fail on a deliberately wrong input.
"""

import numpy as np
import pytest
from scipy import stats

from refvi import gaussian as G
from refvi.verify.gradcheck import assert_gradcheck, gradcheck, taylor_test
from refvi.verify.montecarlo import assert_z_test, mc_mean, z_test
from refvi.verify.quadrature import expect_gaussian

DIMS = (1, 2, 3)
QUAD_RTOL = 1e-10  # closed form vs quadrature, relative
GRAD_RTOL = 1e-7  # handwritten gradient vs central differences, relative
N_SIGMA = 5  # Monte Carlo: standard errors


def random_full(rng, d):
    """A random Gaussian with a well-conditioned lower Cholesky factor."""
    L = np.tril(0.5 * rng.standard_normal((d, d)), k=-1)
    L += np.diag(np.exp(0.3 * rng.standard_normal(d)))
    return G.Gaussian(rng.standard_normal(d), L)


def random_diag(rng, d):
    return G.DiagGaussian(rng.standard_normal(d), 0.3 * rng.standard_normal(d))


def random_pair(kind, rng, d):
    make = random_full if kind == "full" else random_diag
    return make(rng, d), make(rng, d)


def scipy_logpdf(p):
    frozen = stats.multivariate_normal(p.mean, p.cov)
    return lambda x: np.atleast_1d(frozen.logpdf(x))


def rel_err(a, b):
    return np.max(np.abs(np.asarray(a) - b) / np.abs(b))


# ---------------------------------------------------------------------------
# log_prob against scipy.stats


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("d", DIMS)
def test_log_prob_matches_scipy(kind, d):
    rng = np.random.default_rng(10 + d)
    p, _ = random_pair(kind, rng, d)
    x = p.mean + 2.0 * rng.standard_normal((7, d))
    assert rel_err(G.log_prob(p, x), scipy_logpdf(p)(x)) <= 1e-12


def test_scipy_check_fails_on_wrong_log_prob():
    rng = np.random.default_rng(1)
    p = random_full(rng, 2)
    x = rng.standard_normal((5, 2))
    wrong = G.log_prob(p, x) - 0.5 * G._logdet_chol(p.L)  # log det counted twice
    assert rel_err(wrong, scipy_logpdf(p)(x)) > 1e-3


def test_private_kernels_match_dense_formulas():
    rng = np.random.default_rng(2)
    p = random_full(rng, 3)
    x = rng.standard_normal((4, 3))
    r = x - p.mean
    maha = np.einsum("ij,ij->i", r, np.linalg.solve(p.cov, r.T).T)
    assert rel_err(G._mahalanobis_chol(x, p.mean, p.L), maha) <= 1e-12
    logdet = np.linalg.slogdet(p.cov)[1]
    assert abs(G._logdet_chol(p.L) - logdet) <= 1e-12 * abs(logdet) + 1e-14
    assert rel_err(G._log_prob_chol(x, p.mean, p.L), scipy_logpdf(p)(x)) <= 1e-12


def test_diag_agrees_with_its_full_form():
    rng = np.random.default_rng(3)
    p, q = random_pair("diag", rng, 3)
    x = rng.standard_normal((5, 3))
    pf, qf = p.to_full(), q.to_full()
    assert rel_err(G.log_prob(p, x), G.log_prob(pf, x)) <= 1e-13
    assert rel_err(G.entropy(p), G.entropy(pf)) <= 1e-13
    assert rel_err(G.kl(p, q), G.kl(pf, qf)) <= 1e-13
    assert rel_err(G.kl_standard_normal(p), G.kl_standard_normal(pf)) <= 1e-13
    np.testing.assert_allclose(p.cov, pf.cov, rtol=1e-15)


# ---------------------------------------------------------------------------
# Entropy and KL against quadrature


def standard_normal_like(p):
    """N(0, I) in the family of ``p``."""
    if isinstance(p, G.Gaussian):
        return G.standard_normal(p.d)
    return G.DiagGaussian(np.zeros(p.d), np.zeros(p.d))


def quadrature_kl(p, q):
    """E_p[log p - log q] by Gauss-Hermite quadrature of scipy's log-densities."""
    logpdf_p, logpdf_q = scipy_logpdf(p), scipy_logpdf(q)
    return expect_gaussian(lambda x: logpdf_p(x) - logpdf_q(x), p.mean, p.L).value


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("d", DIMS)
def test_entropy_matches_quadrature(kind, d):
    rng = np.random.default_rng(20 + d)
    p, _ = random_pair(kind, rng, d)
    logpdf = scipy_logpdf(p)
    quad = expect_gaussian(lambda x: -logpdf(x), p.mean, p.L)
    assert rel_err(G.entropy(p), quad.value) <= QUAD_RTOL


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("d", DIMS)
def test_kl_matches_quadrature(kind, d):
    p, q = random_pair(kind, np.random.default_rng(30 + d), d)
    assert rel_err(G.kl(p, q), quadrature_kl(p, q)) <= QUAD_RTOL


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("d", DIMS)
def test_kl_standard_normal_matches_quadrature(kind, d):
    p, _ = random_pair(kind, np.random.default_rng(40 + d), d)
    zero = standard_normal_like(p)
    assert rel_err(G.kl_standard_normal(p), quadrature_kl(p, zero)) <= QUAD_RTOL
    assert rel_err(G.kl_standard_normal(p), G.kl(p, zero)) <= 1e-13


def test_quadrature_check_fails_on_wrong_kl():
    p, q = random_pair("full", np.random.default_rng(4), 2)
    wrong = G.kl(p, q) + 0.5 * (G._logdet_chol(p.L) - G._logdet_chol(q.L))  # no logdet
    assert rel_err(wrong, quadrature_kl(p, q)) > 1e-3


# ---------------------------------------------------------------------------
# Monte Carlo at fixed seeds


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("d", DIMS)
def test_entropy_and_kl_match_monte_carlo(kind, d):
    rng = np.random.default_rng(50 + d)
    p, q = random_pair(kind, rng, d)
    x = G.sample(p, rng, 20_000)
    log_p, log_q = scipy_logpdf(p)(x), scipy_logpdf(q)(x)
    log_0 = scipy_logpdf(standard_normal_like(p))(x)
    assert_z_test(mc_mean(-log_p), G.entropy(p), n_sigma=N_SIGMA)
    assert_z_test(mc_mean(log_p - log_q), G.kl(p, q), n_sigma=N_SIGMA)
    assert_z_test(mc_mean(log_p - log_0), G.kl_standard_normal(p), n_sigma=N_SIGMA)


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_sample_moments_match_monte_carlo(kind):
    rng = np.random.default_rng(60)
    p, _ = random_pair(kind, rng, 3)
    x = G.sample(p, rng, 20_000)
    assert_z_test(mc_mean(x), p.mean, n_sigma=N_SIGMA)
    r = x - p.mean
    assert_z_test(
        mc_mean(np.einsum("ni,nj->nij", r, r).reshape(len(x), -1)),
        p.cov.ravel(),
        n_sigma=N_SIGMA,
    )


def test_monte_carlo_check_fails_on_wrong_kl():
    rng = np.random.default_rng(5)
    p, q = random_pair("full", rng, 2)
    x = G.sample(p, rng, 20_000)
    estimate = mc_mean(scipy_logpdf(p)(x) - scipy_logpdf(q)(x))
    assert not z_test(estimate, G.kl(p, q) + 0.1, n_sigma=N_SIGMA).ok


def test_sample_is_reparameterize_of_standard_normal_draws():
    rng = np.random.default_rng(6)
    p = random_full(rng, 3)
    x = G.sample(p, np.random.default_rng(7), 5)
    eps = np.random.default_rng(7).standard_normal((5, 3))
    np.testing.assert_array_equal(x, G.reparameterize(p, eps))
    np.testing.assert_array_equal(x, G.sample(p, np.random.default_rng(7), 5))
    assert G.sample(p, rng, 4).shape == (4, 3)


# ---------------------------------------------------------------------------
# Gradients against central differences


def make(kind, P, suffix=""):
    if kind == "full":
        return G.Gaussian(P["mean" + suffix], P["L" + suffix])
    return G.DiagGaussian(P["mean" + suffix], P["log_std" + suffix])


def params(kind, p, suffix=""):
    scale = "L" if kind == "full" else "log_std"
    return {"mean" + suffix: p.mean, scale + suffix: getattr(p, scale)}


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("d", DIMS)
def test_log_prob_grad_matches_gradcheck(kind, d):
    rng = np.random.default_rng(70 + d)
    p, _ = random_pair(kind, rng, d)
    x = p.mean + rng.standard_normal((4, d))
    dout = rng.standard_normal(4)

    def f_and_grad(P):
        value, grads = G.log_prob_and_grad(make(kind, P), P["x"], dout)
        return dout @ value, grads

    assert_gradcheck(f_and_grad, {**params(kind, p), "x": x}, rtol=GRAD_RTOL)


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("d", DIMS)
def test_entropy_grad_matches_gradcheck(kind, d):
    p, _ = random_pair(kind, np.random.default_rng(80 + d), d)
    assert_gradcheck(
        lambda P: G.entropy_and_grad(make(kind, P)), params(kind, p), rtol=GRAD_RTOL
    )


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("d", DIMS)
def test_kl_grad_matches_gradcheck(kind, d):
    p, q = random_pair(kind, np.random.default_rng(90 + d), d)

    def f_and_grad(P):
        return G.kl_and_grad(make(kind, P, "_p"), make(kind, P, "_q"))

    P = {**params(kind, p, "_p"), **params(kind, q, "_q")}
    assert_gradcheck(f_and_grad, P, rtol=GRAD_RTOL)


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("d", DIMS)
def test_kl_standard_normal_grad_matches_gradcheck(kind, d):
    p, _ = random_pair(kind, np.random.default_rng(100 + d), d)
    assert_gradcheck(
        lambda P: G.kl_standard_normal_and_grad(make(kind, P)),
        params(kind, p),
        rtol=GRAD_RTOL,
    )


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_reparameterize_grad_matches_gradcheck(kind):
    rng = np.random.default_rng(110)
    p, _ = random_pair(kind, rng, 3)
    eps = rng.standard_normal((4, 3))
    dout = rng.standard_normal((4, 3))

    def f_and_grad(P):
        value, grads = G.reparameterize_and_grad(make(kind, P), P["eps"], dout)
        return np.sum(dout * value), grads

    assert_gradcheck(f_and_grad, {**params(kind, p), "eps": eps}, rtol=GRAD_RTOL)


def test_kl_grad_passes_taylor_test():
    rng = np.random.default_rng(120)
    # diagonals near 2, off-diagonals small: the Taylor steps keep L valid
    p = G.Gaussian(
        rng.standard_normal(3), 2 * np.eye(3) + np.tril(0.1 * rng.random((3, 3)), -1)
    )
    q = G.Gaussian(
        rng.standard_normal(3), 2 * np.eye(3) + np.tril(0.1 * rng.random((3, 3)), -1)
    )

    def f_and_grad(P):
        return G.kl_and_grad(
            G.Gaussian(P["mean_p"], P["L_p"]), G.Gaussian(P["mean_q"], P["L_q"])
        )

    P = {"mean_p": p.mean, "L_p": p.L, "mean_q": q.mean, "L_q": q.L}
    result = taylor_test(f_and_grad, P, rng)
    assert result.ok, result.orders


def test_gradchecks_fail_on_wrong_gradients():
    rng = np.random.default_rng(130)
    p, q = random_pair("full", rng, 3)
    P = {"mean_p": p.mean, "L_p": p.L, "mean_q": q.mean, "L_q": q.L}

    def wrong_grad_L_q(P):  # drops the delta delta^T term of (G.18)
        value, grads = G.kl_and_grad(
            G.Gaussian(P["mean_p"], P["L_p"]), G.Gaussian(P["mean_q"], P["L_q"])
        )
        delta = np.linalg.solve(q.L, p.mean - q.mean)
        grads["L_q"] = grads["L_q"] + np.tril(
            np.linalg.solve(q.L.T, np.outer(delta, delta))
        )
        return value, grads

    assert not gradcheck(wrong_grad_L_q, P).ok
    assert not taylor_test(wrong_grad_L_q, P, rng).ok

    def wrong_upper_L(P):  # the symmetric (non-triangular) gradient
        value, grads = G.entropy_and_grad(G.Gaussian(P["mean"], P["L"]))
        grads["L"] = grads["L"] + np.triu(np.ones((3, 3)), 1)
        return value, grads

    assert not gradcheck(wrong_upper_L, {"mean": p.mean, "L": p.L}).ok


# ---------------------------------------------------------------------------
# Validation, promotion, no mutation


def test_gaussian_validates_its_arguments():
    with pytest.raises(ValueError, match="mean contains NaN"):
        G.Gaussian([0.0, np.nan], np.eye(2))
    with pytest.raises(ValueError, match="L contains NaN or inf"):
        G.Gaussian([0.0, 0.0], [[1.0, 0.0], [np.inf, 1.0]])
    with pytest.raises(ValueError, match="L must have shape"):
        G.Gaussian([0.0, 0.0], np.eye(3))
    with pytest.raises(ValueError, match="L must be lower triangular"):
        G.Gaussian([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="L must have a positive diagonal"):
        G.Gaussian([0.0, 0.0], [[1.0, 0.0], [0.3, 0.0]])
    with pytest.raises(ValueError, match="L must have a positive diagonal"):
        G.Gaussian([0.0, 0.0], [[-1.0, 0.0], [0.3, 1.0]])
    with pytest.raises(ValueError, match="mean must not be empty"):
        G.Gaussian(np.zeros(0), np.zeros((0, 0)))
    with pytest.raises(ValueError, match="mean must have 1 dimension"):
        G.Gaussian(np.zeros((2, 1)), np.eye(2))


def test_from_cov_validates_sigma():
    with pytest.raises(ValueError, match="Sigma must be symmetric"):
        G.Gaussian.from_cov([0.0, 0.0], [[1.0, 0.5], [0.4, 1.0]])
    with pytest.raises(ValueError, match="Sigma must be positive definite"):
        G.Gaussian.from_cov([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="Sigma contains NaN"):
        G.Gaussian.from_cov([0.0, 0.0], [[1.0, np.nan], [np.nan, 1.0]])
    with pytest.raises(ValueError, match="Sigma must have shape"):
        G.Gaussian.from_cov([0.0, 0.0], np.eye(3))
    Sigma = np.array([[2.0, 0.5], [0.5, 1.0]])
    p = G.Gaussian.from_cov([1.0, 2.0], Sigma)
    np.testing.assert_allclose(p.cov, Sigma, rtol=1e-15)


def test_diag_gaussian_validates_its_arguments():
    with pytest.raises(ValueError, match="log_std contains NaN"):
        G.DiagGaussian([0.0, 0.0], [0.0, np.nan])
    with pytest.raises(ValueError, match="log_std must have shape"):
        G.DiagGaussian([0.0, 0.0], [0.0])
    with pytest.raises(ValueError, match="log_std must give a finite positive"):
        G.DiagGaussian([0.0], [400.0])
    with pytest.raises(ValueError, match="mean contains NaN or inf"):
        G.DiagGaussian([np.inf], [0.0])


def test_functions_validate_their_arguments():
    p = G.standard_normal(2)
    with pytest.raises(ValueError, match="x contains NaN"):
        G.log_prob(p, [[0.0, np.nan]])
    with pytest.raises(ValueError, match="x must have shape"):
        G.log_prob(p, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="x must have 2 dimension"):
        G.log_prob(p, np.zeros(2))
    with pytest.raises(ValueError, match="x must not be empty"):
        G.log_prob(p, np.zeros((0, 2)))
    with pytest.raises(ValueError, match="dout must have shape"):
        G.log_prob_and_grad(p, np.zeros((3, 2)), dout=np.ones(2))
    with pytest.raises(ValueError, match="dout contains NaN"):
        G.log_prob_and_grad(p, np.zeros((1, 2)), dout=[np.nan])
    with pytest.raises(ValueError, match="eps must have shape"):
        G.reparameterize(p, np.zeros((3, 1)))
    with pytest.raises(ValueError, match="n must be >= 1"):
        G.sample(p, np.random.default_rng(0), 0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        G.sample(p, 0, 3)
    with pytest.raises(TypeError, match="p must be a Gaussian or DiagGaussian"):
        G.entropy(np.eye(2))
    with pytest.raises(TypeError, match="p and q must be the same family"):
        G.kl(p, G.DiagGaussian([0.0, 0.0], [0.0, 0.0]))
    with pytest.raises(ValueError, match="q must have the dimension of p"):
        G.kl(p, G.standard_normal(3))
    with pytest.raises(ValueError, match="d must be >= 1"):
        G.standard_normal(0)


def test_float32_and_integer_input_are_promoted():
    p = G.Gaussian(np.array([1, 2]), np.array([[2, 0], [1, 1]]))
    assert p.mean.dtype == p.L.dtype == np.float64
    q = G.DiagGaussian(np.zeros(2, dtype=np.float32), np.zeros(2, dtype=np.float32))
    assert q.log_std.dtype == np.float64
    x32 = np.array([[0.5, -1.0]], dtype=np.float32)
    value = G.log_prob(p, x32)
    assert value.dtype == np.float64
    assert value[0] == G.log_prob(p, x32.astype(np.float64))[0]
    assert G.log_prob(p, np.array([[1, 2]])).dtype == np.float64


def test_parameters_are_private_read_only_copies():
    mean, L = np.zeros(2), np.eye(2)
    p = G.Gaussian(mean, L)
    mean[0], L[1, 1] = 5.0, 3.0
    assert p.mean[0] == 0.0 and p.L[1, 1] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        p.mean[0] = 1.0
    q = G.DiagGaussian(np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="read-only"):
        q.log_std[0] = 1.0


def test_no_function_mutates_its_inputs():
    rng = np.random.default_rng(140)
    x = rng.standard_normal((4, 2))
    eps = rng.standard_normal((4, 2))
    dout, dout2 = rng.standard_normal(4), rng.standard_normal((4, 2))
    mean, L, Sigma = rng.standard_normal(2), np.array([[1.0, 0], [0.3, 2]]), None
    Sigma = L @ L.T
    arrays = [x, eps, dout, dout2, mean, L, Sigma]
    before = [a.copy() for a in arrays]
    for p in (
        G.Gaussian(mean, L),
        G.Gaussian.from_cov(mean, Sigma),
        G.DiagGaussian(mean, mean),
    ):
        G.log_prob_and_grad(p, x, dout)
        G.reparameterize_and_grad(p, eps, dout2)
        G.sample(p, rng, 3)
        G.entropy_and_grad(p)
        G.kl_and_grad(p, p)
        G.kl_standard_normal_and_grad(p)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_kl_of_a_distribution_with_itself_is_zero():
    rng = np.random.default_rng(150)
    for kind in ("full", "diag"):
        p, _ = random_pair(kind, rng, 3)
        value, grads = G.kl_and_grad(p, p)
        assert abs(value) <= 1e-15
        for g in grads.values():
            np.testing.assert_allclose(g, 0.0, atol=1e-14)
