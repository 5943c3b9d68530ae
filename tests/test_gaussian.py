"""refvi.gaussian: every closed form against another route.

Routes: scipy.stats (log_prob), Gauss-Hermite quadrature of scipy's log-density
(entropy, KL; tolerance 1e-10 relative), Monte Carlo at fixed seeds (within 5
standard errors), central differences and Taylor remainders (gradients, 1e-7
relative), and a Python loop over the batch of single-distribution calls
(batched results, 1e-13 relative). Each checker is shown to fail on a
deliberately wrong input.
"""

import numpy as np
import pytest
from scipy import stats

from refvi import gaussian as G
from refvi.verify.gradcheck import assert_gradcheck, gradcheck, taylor_test
from refvi.verify.montecarlo import assert_z_test, mc_mean, z_test
from refvi.verify.quadrature import expect_gaussian

DIMS = (1, 2, 3)
KINDS = ("full", "diag")
PAIRS = [(a, b) for a in KINDS for b in KINDS]
QUAD_RTOL = 1e-10  # closed form vs quadrature, relative
GRAD_RTOL = 1e-7  # handwritten gradient vs central differences, relative
LOOP_RTOL = 1e-13  # batched call vs a loop of single calls, relative
N_SIGMA = 5  # Monte Carlo: standard errors


def random_L(rng, shape, d):
    """Well-conditioned lower Cholesky factors of shape ``shape + (d, d)``."""
    L = np.tril(0.5 * rng.standard_normal(shape + (d, d)), k=-1)
    return L + np.exp(0.3 * rng.standard_normal(shape + (d,)))[..., None] * np.eye(d)


def random_dist(kind, rng, d, shape=()):
    mean = rng.standard_normal(shape + (d,))
    if kind == "full":
        return G.Gaussian(mean, scale_tril=random_L(rng, shape, d))
    return G.Gaussian(mean, log_std=0.3 * rng.standard_normal(shape + (d,)))


def scipy_logpdf(p):
    frozen = stats.multivariate_normal(p.mean, p.cov)
    return lambda x: np.atleast_1d(frozen.logpdf(x))


def rel_err(a, b):
    return np.max(np.abs(np.asarray(a) - b) / np.abs(b))


def scale_name(p):
    return "log_std" if p.is_diagonal else "scale_tril"


def make(kind, P, suffix=""):
    if kind == "full":
        return G.Gaussian(P["mean" + suffix], scale_tril=P["scale_tril" + suffix])
    return G.Gaussian(P["mean" + suffix], log_std=P["log_std" + suffix])


def params(p, suffix=""):
    return {"mean" + suffix: p.mean, scale_name(p) + suffix: getattr(p, scale_name(p))}


def tril_names(P):
    return [name for name in P if name.startswith("scale_tril")] or None


def check_grads(f_and_grad, P, **kw):
    assert_gradcheck(
        f_and_grad, P, rtol=GRAD_RTOL, lower_triangular=tril_names(P), **kw
    )


# ---------------------------------------------------------------------------
# Construction


def test_keyword_constructors_agree():
    rng = np.random.default_rng(0)
    L = random_L(rng, (), 3)
    mean = rng.standard_normal(3)
    by_cov = G.Gaussian(mean, cov=L @ L.T)
    np.testing.assert_allclose(by_cov.scale_tril, L, rtol=1e-13, atol=1e-15)
    s = 0.3 * rng.standard_normal(3)
    diag = G.Gaussian(mean, log_std=s)
    assert diag.is_diagonal and diag.scale_tril is None
    np.testing.assert_allclose(diag.cov, np.diag(np.exp(2 * s)), rtol=1e-15)
    np.testing.assert_allclose(diag.to_full().scale_tril, np.diag(np.exp(s)))


def test_a_positional_covariance_is_refused_with_the_keywords():
    with pytest.raises(TypeError, match=r"cov=Sigma.*scale_tril=L.*log_std=s"):
        G.Gaussian(np.zeros(2), np.eye(2))
    with pytest.raises(TypeError, match="exactly one of cov=, scale_tril=, log_std="):
        G.Gaussian(np.zeros(2))
    with pytest.raises(TypeError, match="exactly one of"):
        G.Gaussian(np.zeros(2), cov=np.eye(2), scale_tril=np.eye(2))


def test_batch_shape_broadcasts_like_torch():
    rng = np.random.default_rng(1)
    p = G.Gaussian(rng.standard_normal((4, 1, 2)), scale_tril=random_L(rng, (3,), 2))
    assert p.batch_shape == (4, 3) and p.d == 2
    assert G.entropy(p).shape == (4, 3)
    assert G.sample(p, rng, 5).shape == (5, 4, 3, 2)
    assert G.log_prob(p, np.zeros(2)).shape == (4, 3)
    assert G.log_prob(p, np.zeros((6, 1, 1, 2))).shape == (6, 4, 3)
    q = G.standard_normal(2)
    assert G.kl(q, p).shape == (4, 3) and G.kl(q, q).shape == ()


# ---------------------------------------------------------------------------
# log_prob against scipy.stats


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", DIMS)
def test_log_prob_matches_scipy(kind, d):
    rng = np.random.default_rng(10 + d)
    p = random_dist(kind, rng, d)
    x = p.mean + 2.0 * rng.standard_normal((7, d))
    assert rel_err(G.log_prob(p, x), scipy_logpdf(p)(x)) <= 1e-12


def test_scipy_check_fails_on_wrong_log_prob():
    rng = np.random.default_rng(1)
    p = random_dist("full", rng, 2)
    x = rng.standard_normal((5, 2))
    wrong = G.log_prob(p, x) - 0.5 * G._logdet_chol(p.scale_tril)  # log det twice
    assert rel_err(wrong, scipy_logpdf(p)(x)) > 1e-3


def test_private_kernels_match_dense_formulas():
    rng = np.random.default_rng(2)
    p = random_dist("full", rng, 3)
    L = p.scale_tril
    x = rng.standard_normal((4, 3))
    r = x - p.mean
    maha = np.einsum("ij,ij->i", r, np.linalg.solve(p.cov, r.T).T)
    assert rel_err(G._mahalanobis_chol(x, p.mean, L), maha) <= 1e-12
    logdet = np.linalg.slogdet(p.cov)[1]
    assert abs(G._logdet_chol(L) - logdet) <= 1e-12 * abs(logdet) + 1e-14
    assert rel_err(G._log_prob_chol(x, p.mean, L), scipy_logpdf(p)(x)) <= 1e-12


@pytest.mark.parametrize("d", (1, 3, 4, 5, 9, 16))
@pytest.mark.parametrize("trans", (False, True))
def test_batched_triangular_solve_matches_numpy_solve(d, trans):
    rng = np.random.default_rng(3 + d)
    L = random_L(rng, (7,), d)
    B = rng.standard_normal((2, 7, d, 3))  # broadcasts against L's batch
    A = np.swapaxes(L, -1, -2) if trans else L
    want = np.linalg.solve(A, B)
    assert rel_err(G._solve_tril(L, B, trans=trans), want) <= 1e-10
    one = G._solve_tril(L[0], B[:, 0], trans=trans)  # the LAPACK route
    np.testing.assert_allclose(one, want[:, 0], rtol=1e-10)
    # both broadcast: L (2, 1, d, d) against B (7, d, 3)
    L2 = random_L(rng, (2, 1), d)
    want = np.linalg.solve(np.swapaxes(L2, -1, -2) if trans else L2, B[0])
    assert rel_err(G._solve_tril(L2, B[0], trans=trans), want) <= 1e-10


def test_diag_agrees_with_its_full_form():
    rng = np.random.default_rng(3)
    p, q = random_dist("diag", rng, 3), random_dist("diag", rng, 3)
    x = rng.standard_normal((5, 3))
    pf, qf = p.to_full(), q.to_full()
    assert rel_err(G.log_prob(p, x), G.log_prob(pf, x)) <= 1e-13
    assert rel_err(G.entropy(p), G.entropy(pf)) <= 1e-13
    assert rel_err(G.kl(p, q), G.kl(pf, qf)) <= 1e-13
    assert rel_err(G.kl(p, qf), G.kl(pf, q)) <= 1e-13
    np.testing.assert_allclose(p.cov, pf.cov, rtol=1e-15)


# ---------------------------------------------------------------------------
# Entropy and KL against quadrature


def quadrature_kl(q, p):
    """E_q[log q - log p] by Gauss-Hermite quadrature of scipy's log-densities."""
    logpdf_q, logpdf_p = scipy_logpdf(q), scipy_logpdf(p)
    L_q = G._factor(q)
    return expect_gaussian(lambda x: logpdf_q(x) - logpdf_p(x), q.mean, L_q).value


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", DIMS)
def test_entropy_matches_quadrature(kind, d):
    rng = np.random.default_rng(20 + d)
    p = random_dist(kind, rng, d)
    logpdf = scipy_logpdf(p)
    quad = expect_gaussian(lambda x: -logpdf(x), p.mean, G._factor(p))
    assert rel_err(G.entropy(p), quad.value) <= QUAD_RTOL


@pytest.mark.parametrize("kinds", PAIRS)
@pytest.mark.parametrize("d", DIMS)
def test_kl_matches_quadrature(kinds, d):
    rng = np.random.default_rng(30 + d)
    q, p = random_dist(kinds[0], rng, d), random_dist(kinds[1], rng, d)
    assert rel_err(G.kl(q, p), quadrature_kl(q, p)) <= QUAD_RTOL


@pytest.mark.parametrize("kind", KINDS)
def test_kl_to_the_standard_normal_matches_quadrature(kind):
    q = random_dist(kind, np.random.default_rng(40), 3)
    zero = G.standard_normal(3)
    assert rel_err(G.kl(q, zero), quadrature_kl(q, zero)) <= QUAD_RTOL


def test_quadrature_check_fails_on_wrong_kl():
    rng = np.random.default_rng(4)
    q, p = random_dist("full", rng, 2), random_dist("full", rng, 2)
    wrong = G.kl(q, p) + 0.5 * (
        G._logdet_chol(q.scale_tril) - G._logdet_chol(p.scale_tril)
    )  # log det term dropped
    assert rel_err(wrong, quadrature_kl(q, p)) > 1e-3
    assert rel_err(G.kl(p, q), quadrature_kl(q, p)) > 1e-3  # arguments swapped


# ---------------------------------------------------------------------------
# Batched calls against a loop of single calls


def single(p, index):
    """The distribution at ``index`` of ``p``'s batch, as an unbatched Gaussian."""
    mean = np.broadcast_to(p.mean, p.batch_shape + (p.d,))[index]
    if p.is_diagonal:
        log_std = np.broadcast_to(p.log_std, p.batch_shape + (p.d,))[index]
        return G.Gaussian(mean, log_std=log_std)
    L = np.broadcast_to(p.scale_tril, p.batch_shape + (p.d, p.d))[index]
    return G.Gaussian(mean, scale_tril=L)


@pytest.mark.parametrize("kinds", PAIRS)
def test_batched_values_match_a_loop(kinds):
    rng = np.random.default_rng(45)
    q = random_dist(kinds[0], rng, 3, shape=(4, 1))
    p = random_dist(kinds[1], rng, 3, shape=(5,))
    x = rng.standard_normal((2, 1, 5, 3))
    kl, H, lp = G.kl(q, p), G.entropy(q), G.log_prob(p, x)
    rep = G.reparameterize(q, x[:, :, :1])
    assert kl.shape == (4, 5) and lp.shape == (2, 1, 5)
    for i, j in np.ndindex(4, 5):
        assert rel_err(kl[i, j], G.kl(single(q, (i, 0)), single(p, (j,)))) <= LOOP_RTOL
    for i in range(4):
        assert rel_err(H[i, 0], G.entropy(single(q, (i, 0)))) <= LOOP_RTOL
        want = G.reparameterize(single(q, (i, 0)), x[:, 0, 0])
        np.testing.assert_allclose(rep[:, i, 0], want, rtol=LOOP_RTOL)
    for j in range(5):
        want = G.log_prob(single(p, (j,)), x[:, 0, j])
        assert rel_err(lp[:, 0, j], want) <= LOOP_RTOL


def test_loop_check_fails_on_a_wrong_batch():
    rng = np.random.default_rng(46)
    q, p = random_dist("full", rng, 3, (4,)), random_dist("full", rng, 3, (4,))
    swapped = G.kl(q, p)[::-1]
    assert rel_err(swapped[0], G.kl(single(q, (0,)), single(p, (0,)))) > 1e-3


# ---------------------------------------------------------------------------
# Monte Carlo at fixed seeds


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d", DIMS)
def test_entropy_and_kl_match_monte_carlo(kind, d):
    rng = np.random.default_rng(50 + d)
    q, p = random_dist(kind, rng, d), random_dist(kind, rng, d)
    x = G.sample(q, rng, 20_000)
    log_q, log_p = scipy_logpdf(q)(x), scipy_logpdf(p)(x)
    assert_z_test(mc_mean(-log_q), G.entropy(q), n_sigma=N_SIGMA)
    assert_z_test(mc_mean(log_q - log_p), G.kl(q, p), n_sigma=N_SIGMA)


@pytest.mark.parametrize("kind", KINDS)
def test_sample_moments_match_monte_carlo(kind):
    rng = np.random.default_rng(60)
    p = random_dist(kind, rng, 3)
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
    q, p = random_dist("full", rng, 2), random_dist("full", rng, 2)
    x = G.sample(q, rng, 20_000)
    estimate = mc_mean(scipy_logpdf(q)(x) - scipy_logpdf(p)(x))
    assert not z_test(estimate, G.kl(q, p) + 10 * estimate.se, n_sigma=N_SIGMA).ok


def test_sample_is_reparameterize_of_standard_normal_draws():
    rng = np.random.default_rng(6)
    p = random_dist("full", rng, 3, shape=(2,))
    x = G.sample(p, np.random.default_rng(7), 5)
    eps = np.random.default_rng(7).standard_normal((5, 2, 3))
    np.testing.assert_array_equal(x, G.reparameterize(p, eps))
    np.testing.assert_array_equal(x, G.sample(p, np.random.default_rng(7), 5))


# ---------------------------------------------------------------------------
# Gradients against central differences


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shapes", [((), (4,)), ((3,), (2, 3)), ((2,), (4, 1))])
def test_log_prob_grad_matches_gradcheck(kind, shapes):
    batch, x_batch = shapes
    rng = np.random.default_rng(70 + len(x_batch))
    p = random_dist(kind, rng, 3, batch)
    x = rng.standard_normal(x_batch + (3,))
    dout = rng.standard_normal(np.broadcast_shapes(batch, x_batch))

    def f_and_grad(P):
        value, grads = G.log_prob_and_grad(make(kind, P), P["x"], dout)
        return np.sum(dout * value), grads

    check_grads(f_and_grad, {**params(p), "x": x})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [(), (3,)])
def test_entropy_grad_matches_gradcheck(kind, batch):
    rng = np.random.default_rng(80)
    p = random_dist(kind, rng, 3, batch)
    dout = rng.standard_normal(batch)

    def f_and_grad(P):
        value, grads = G.entropy_and_grad(make(kind, P), dout)
        return np.sum(dout * value), grads

    check_grads(f_and_grad, params(p))


@pytest.mark.parametrize("kinds", PAIRS)
@pytest.mark.parametrize("d", DIMS)
def test_kl_grad_matches_gradcheck(kinds, d):
    rng = np.random.default_rng(90 + d)
    q, p = random_dist(kinds[0], rng, d), random_dist(kinds[1], rng, d)

    def f_and_grad(P):
        return G.kl_and_grad(make(kinds[0], P, "_q"), make(kinds[1], P, "_p"))

    check_grads(f_and_grad, {**params(q, "_q"), **params(p, "_p")})


@pytest.mark.parametrize("kinds", PAIRS)
def test_batched_kl_grad_matches_gradcheck(kinds):
    rng = np.random.default_rng(95)
    q = random_dist(kinds[0], rng, 3, (2, 1))
    p = random_dist(kinds[1], rng, 3, (3,))
    dout = rng.standard_normal((2, 3))

    def f_and_grad(P):
        value, grads = G.kl_and_grad(
            make(kinds[0], P, "_q"), make(kinds[1], P, "_p"), dout
        )
        return np.sum(dout * value), grads

    check_grads(f_and_grad, {**params(q, "_q"), **params(p, "_p")})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shapes", [((), (4,)), ((2,), (4, 2)), ((2,), (3, 1))])
def test_reparameterize_grad_matches_gradcheck(kind, shapes):
    batch, eps_batch = shapes
    rng = np.random.default_rng(110)
    p = random_dist(kind, rng, 3, batch)
    eps = rng.standard_normal(eps_batch + (3,))
    dout = rng.standard_normal(np.broadcast_shapes(batch, eps_batch) + (3,))

    def f_and_grad(P):
        value, grads = G.reparameterize_and_grad(make(kind, P), P["eps"], dout)
        return np.sum(dout * value), grads

    check_grads(f_and_grad, {**params(p), "eps": eps})


def near_identity(rng):
    """Diagonals near 2, small off-diagonals: the Taylor steps keep L valid."""
    return 2 * np.eye(3) + np.tril(0.1 * rng.random((3, 3)), -1)


def test_kl_grad_passes_taylor_test():
    rng = np.random.default_rng(120)
    q = G.Gaussian(rng.standard_normal(3), scale_tril=near_identity(rng))
    p = G.Gaussian(rng.standard_normal(3), scale_tril=near_identity(rng))

    def f_and_grad(P):
        return G.kl_and_grad(make("full", P, "_q"), make("full", P, "_p"))

    P = {**params(q, "_q"), **params(p, "_p")}
    result = taylor_test(f_and_grad, P, rng, lower_triangular=tril_names(P))
    assert result.ok, result.orders


def test_gradchecks_fail_on_wrong_gradients():
    rng = np.random.default_rng(130)
    q, p = random_dist("full", rng, 3), random_dist("full", rng, 3)
    P = {**params(q, "_q"), **params(p, "_p")}

    def wrong_grad_L_p(P):  # drops the delta delta^T term of (G.18)
        value, grads = G.kl_and_grad(make("full", P, "_q"), make("full", P, "_p"))
        L_p = p.scale_tril
        delta = np.linalg.solve(L_p, q.mean - p.mean)
        grads["scale_tril_p"] = grads["scale_tril_p"] + np.tril(
            np.linalg.solve(L_p.T, np.outer(delta, delta))
        )
        return value, grads

    assert not gradcheck(wrong_grad_L_p, P, lower_triangular=tril_names(P)).ok
    assert not taylor_test(wrong_grad_L_p, P, rng, lower_triangular=tril_names(P)).ok

    def wrong_upper_L(P):  # the symmetric (non-triangular) gradient
        value, grads = G.entropy_and_grad(make("full", P))
        grads["scale_tril"] = grads["scale_tril"] + np.triu(np.ones((3, 3)), 1)
        return value, grads

    P = params(q)
    assert not gradcheck(wrong_upper_L, P, lower_triangular=tril_names(P)).ok


# ---------------------------------------------------------------------------
# Validation, promotion, no mutation


def test_gaussian_validates_its_arguments():
    with pytest.raises(ValueError, match="mean contains NaN"):
        G.Gaussian([0.0, np.nan], scale_tril=np.eye(2))
    with pytest.raises(ValueError, match="scale_tril contains NaN or inf"):
        G.Gaussian([0.0, 0.0], scale_tril=[[1.0, 0.0], [np.inf, 1.0]])
    with pytest.raises(
        ValueError, match=r"scale_tril must have shape \(\.\.\., 2, 2\)"
    ):
        G.Gaussian([0.0, 0.0], scale_tril=np.eye(3))
    with pytest.raises(ValueError, match="scale_tril must be lower triangular"):
        G.Gaussian([0.0, 0.0], scale_tril=[[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="scale_tril must have a positive diagonal"):
        G.Gaussian([0.0, 0.0], scale_tril=[[1.0, 0.0], [0.3, 0.0]])
    with pytest.raises(ValueError, match="mean must not be empty"):
        G.Gaussian(np.zeros(0), scale_tril=np.zeros((0, 0)))
    with pytest.raises(ValueError, match="mean must have shape"):
        G.Gaussian(0.0, log_std=np.zeros(1))
    with pytest.raises(ValueError, match="batch shapes do not broadcast: mean"):
        G.Gaussian(np.zeros((3, 2)), scale_tril=np.broadcast_to(np.eye(2), (4, 2, 2)))


def test_cov_is_validated():
    with pytest.raises(ValueError, match="cov must be symmetric"):
        G.Gaussian([0.0, 0.0], cov=[[1.0, 0.5], [0.4, 1.0]])
    with pytest.raises(ValueError, match="cov must be positive definite"):
        G.Gaussian([0.0, 0.0], cov=[[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="cov must be positive definite"):
        G.Gaussian([0.0, 0.0], cov=[np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match="cov contains NaN"):
        G.Gaussian([0.0, 0.0], cov=[[1.0, np.nan], [np.nan, 1.0]])
    with pytest.raises(ValueError, match="cov must have shape"):
        G.Gaussian([0.0, 0.0], cov=np.eye(3))


def test_log_std_is_validated():
    with pytest.raises(ValueError, match="log_std contains NaN"):
        G.Gaussian([0.0, 0.0], log_std=[0.0, np.nan])
    with pytest.raises(ValueError, match="log_std must have shape"):
        G.Gaussian([0.0, 0.0], log_std=[0.0])
    with pytest.raises(ValueError, match="log_std must give a finite positive"):
        G.Gaussian([0.0], log_std=[400.0])
    with pytest.raises(ValueError, match="mean contains NaN or inf"):
        G.Gaussian([np.inf], log_std=[0.0])


def test_functions_validate_their_arguments():
    p = G.standard_normal(2)
    with pytest.raises(ValueError, match="x contains NaN"):
        G.log_prob(p, [[0.0, np.nan]])
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 2\)"):
        G.log_prob(p, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="x must not be empty"):
        G.log_prob(p, np.zeros((0, 2)))
    batched = G.Gaussian(np.zeros((3, 2)), log_std=np.zeros(2))
    with pytest.raises(ValueError, match="batch shapes do not broadcast: x"):
        G.log_prob(batched, np.zeros((4, 2)))
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
    with pytest.raises(TypeError, match="p must be a Gaussian"):
        G.entropy(np.eye(2))
    with pytest.raises(TypeError, match="q must be a Gaussian"):
        G.kl(None, p)
    with pytest.raises(ValueError, match="p must have the dimension of q"):
        G.kl(p, G.standard_normal(3))
    with pytest.raises(ValueError, match="batch shapes do not broadcast: q"):
        G.kl(batched, G.Gaussian(np.zeros((4, 2)), log_std=np.zeros(2)))
    with pytest.raises(ValueError, match="d must be >= 1"):
        G.standard_normal(0)


def test_float32_and_integer_input_are_promoted():
    p = G.Gaussian(np.array([1, 2]), scale_tril=np.array([[2, 0], [1, 1]]))
    assert p.mean.dtype == p.scale_tril.dtype == np.float64
    zeros32 = np.zeros(2, dtype=np.float32)
    assert G.Gaussian(zeros32, log_std=zeros32).log_std.dtype == np.float64
    x32 = np.array([[0.5, -1.0]], dtype=np.float32)
    value = G.log_prob(p, x32)
    assert value.dtype == np.float64
    assert value[0] == G.log_prob(p, x32.astype(np.float64))[0]
    assert G.log_prob(p, np.array([[1, 2]])).dtype == np.float64


def test_parameters_are_private_read_only_copies():
    mean, L = np.zeros(2), np.eye(2)
    p = G.Gaussian(mean, scale_tril=L)
    mean[0], L[1, 1] = 5.0, 3.0
    assert p.mean[0] == 0.0 and p.scale_tril[1, 1] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        p.mean[0] = 1.0
    q = G.Gaussian(np.zeros(2), log_std=np.zeros(2))
    with pytest.raises(ValueError, match="read-only"):
        q.log_std[0] = 1.0


def test_no_function_mutates_its_inputs():
    rng = np.random.default_rng(140)
    x = rng.standard_normal((4, 2))
    eps = rng.standard_normal((4, 2))
    dout, dout2 = rng.standard_normal(4), rng.standard_normal((4, 2))
    mean, L = rng.standard_normal(2), np.array([[1.0, 0], [0.3, 2]])
    Sigma = L @ L.T
    arrays = [x, eps, dout, dout2, mean, L, Sigma]
    before = [a.copy() for a in arrays]
    dists = (
        G.Gaussian(mean, scale_tril=L),
        G.Gaussian(mean, cov=Sigma),
        G.Gaussian(mean, log_std=mean),
    )
    for p in dists:
        G.log_prob_and_grad(p, x, dout)
        G.reparameterize_and_grad(p, eps, dout2)
        G.sample(p, rng, 3)
        G.entropy_and_grad(p)
        for q in dists:
            G.kl_and_grad(q, p)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_kl_of_a_distribution_with_itself_is_zero(kind):
    p = random_dist(kind, np.random.default_rng(150), 3)
    for q in (p, p.to_full()):
        value, grads = G.kl_and_grad(q, p)
        assert abs(value) <= 1e-15
        for g in grads.values():
            np.testing.assert_allclose(g, 0.0, atol=1e-14)
