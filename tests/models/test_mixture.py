"""Gaussian mixture densities, checked by other routes: an extended-precision
direct sum (mpmath), scipy.stats, and the identity log p = ELBO + KL."""

import mpmath
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from refvi.models import mixture as gm
from refvi.verify.gradcheck import assert_gradcheck, gradcheck, taylor_test

TYPES = gm.COVARIANCE_TYPES


def random_mixture(rng, K, d, covariance_type, spread=3.0):
    """A random, well-conditioned mixture of the given type."""
    weights = rng.dirichlet(np.full(K, 2.0))
    means = spread * rng.normal(size=(K, d))
    if covariance_type == "full":
        L = np.tril(0.3 * rng.normal(size=(K, d, d)), -1)
        L += np.eye(d) * rng.uniform(0.5, 1.5, size=(K, 1, d))
    elif covariance_type == "tied":
        L = np.tril(0.3 * rng.normal(size=(d, d)), -1) + np.diag(
            rng.uniform(0.5, 1.5, size=d)
        )
    elif covariance_type == "diag":
        L = rng.uniform(0.5, 1.5, size=(K, d))
    else:
        L = rng.uniform(0.5, 1.5, size=K)
    return with_scale(weights, means, L, covariance_type)


def scale_key(covariance_type):
    """The scale parameter's name: L (full, tied) or std (diag, spherical)."""
    return "L" if covariance_type in ("full", "tied") else "std"


def scale_of(model):
    """The model's scale parameter, L or std."""
    return getattr(model, scale_key(model.covariance_type))


def with_scale(weights, means, scale, covariance_type, from_logits=False):
    """A mixture from weights (or logits) and the type's scale parameter."""
    kw = {scale_key(covariance_type): scale}
    if from_logits:
        return gm.GaussianMixture.from_logits(
            weights, means, covariance_type=covariance_type, **kw
        )
    return gm.GaussianMixture(weights, means, covariance_type=covariance_type, **kw)


def mp_log_joint(model, x, dps=50):
    """log p(x_i, z=k) by a direct sum in extended precision (test oracle).

    Builds each Sigma_k = L_k L_k^T in mpmath, and evaluates
    pi_k (2 pi)^{-d/2} det(Sigma_k)^{-1/2} exp(-(x-mu)^T Sigma_k^{-1} (x-mu) / 2)
    with an LU solve: a route independent of the Cholesky whitening.
    """
    with mpmath.workdps(dps):
        C = model.dense_covariances()
        d = model.d
        out = []
        for xi in x:
            row = []
            for k in range(model.n_components):
                S = mpmath.matrix([[mpmath.mpf(float(v)) for v in r] for r in C[k]])
                e = mpmath.matrix(
                    [
                        mpmath.mpf(float(a)) - mpmath.mpf(float(b))
                        for a, b in zip(xi, model.means[k], strict=True)
                    ]
                )
                q = (e.T * mpmath.lu_solve(S, e))[0]
                dens = (
                    mpmath.mpf(float(model.weights[k]))
                    * (2 * mpmath.pi) ** (-mpmath.mpf(d) / 2)
                    / mpmath.sqrt(mpmath.det(S))
                    * mpmath.exp(-q / 2)
                )
                row.append(dens)
            out.append(row)
        return out


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("far", [False, True])
def test_log_marginal_and_responsibilities_match_mpmath(covariance_type, far):
    rng = np.random.default_rng(1)
    model = random_mixture(rng, K=3, d=3, covariance_type=covariance_type)
    x = rng.normal(size=(4, 3)) * 3.0
    if far:
        # ~450 units from every component: log p(x) about -1e5, exp underflows
        x = x + 450.0 * np.array([1.0, -1.0, 1.0]) / np.sqrt(3.0) * np.sqrt(2.0)
    lp = gm.log_marginal(model, x)
    r = gm.responsibilities(model, x)
    joint = mp_log_joint(model, x)
    with mpmath.workdps(50):
        want_lp = np.array([float(mpmath.log(mpmath.fsum(row))) for row in joint])
        want_r = np.array([[float(v / mpmath.fsum(row)) for v in row] for row in joint])
    if far:
        assert np.all(lp < -5e4)
        assert np.all(np.exp(lp) == 0.0)  # naive exponentiation underflows
    # tolerance 1e-12 relative on log p, 1e-12 absolute on responsibilities
    np.testing.assert_allclose(lp, want_lp, rtol=1e-12, atol=0)
    np.testing.assert_allclose(r, want_r, rtol=0, atol=1e-12)


def test_mpmath_oracle_catches_a_wrong_covariance():
    """The oracle is not vacuous: a 1% change of the std devs is detected."""
    rng = np.random.default_rng(2)
    model = random_mixture(rng, 2, 2, "diag")
    wrong = gm.GaussianMixture(
        model.weights, model.means, covariance_type="diag", std=model.std * 1.01
    )
    x = rng.normal(size=(3, 2))
    with mpmath.workdps(50):
        want = [float(mpmath.log(mpmath.fsum(r))) for r in mp_log_joint(model, x)]
    assert np.max(np.abs(gm.log_marginal(wrong, x) - want)) > 1e-3


@pytest.mark.parametrize("covariance_type", TYPES)
def test_log_lik_matches_scipy_stats(covariance_type):
    rng = np.random.default_rng(3)
    model = random_mixture(rng, K=4, d=3, covariance_type=covariance_type)
    x = rng.normal(size=(50, 3)) * 3.0
    C = model.dense_covariances()
    want = np.stack(
        [stats.multivariate_normal(model.means[k], C[k]).logpdf(x) for k in range(4)],
        axis=1,
    )
    np.testing.assert_allclose(gm.log_lik(model, x), want, rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        gm.log_joint(model, x), want + np.log(model.weights), rtol=1e-12
    )
    # responsibilities are normalised: log sum_k r_ik = 0
    log_r = gm.log_responsibilities(model, x)
    np.testing.assert_allclose(logsumexp(log_r, axis=1), 0.0, rtol=0, atol=1e-14)


def test_blocked_kernel_equals_one_block(monkeypatch):
    """Row blocking changes nothing: many tiny blocks give the same numbers."""
    rng = np.random.default_rng(4)
    model = random_mixture(rng, 3, 2, "full")
    x = rng.normal(size=(101, 2))
    want = gm.log_marginal(model, x)
    monkeypatch.setattr(gm, "_BLOCK_ENTRIES", 1)
    assert len(list(gm._blocks(x, 3))) == 101
    np.testing.assert_allclose(gm.log_marginal(model, x), want, rtol=1e-15)


# ----------------------------------------------------------------- validation


def test_weights_must_be_nonnegative_and_sum_to_one():
    means, std = np.zeros((2, 1)), np.ones(2)
    with pytest.raises(ValueError, match="weights must be non-negative"):
        gm.GaussianMixture([1.5, -0.5], means, None, "spherical", std=std)
    with pytest.raises(ValueError, match="weights must sum to one"):
        gm.GaussianMixture([0.5, 0.6], means, None, "spherical", std=std)
    gm.GaussianMixture([1.0, 0.0], means, None, "spherical", std=std)  # emptied


def test_non_pd_covariance_is_refused_naming_it():
    bad = np.array([[[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    with pytest.raises(ValueError, match=r"covariances\[0\] must be positive definite"):
        gm.GaussianMixture.from_covariances([0.5, 0.5], np.zeros((2, 2)), bad)
    with pytest.raises(ValueError, match="covariances must be positive"):
        gm.GaussianMixture.from_covariances(
            [0.5, 0.5], np.zeros((2, 2)), [[1.0, -1.0], [1.0, 1.0]], "diag"
        )
    with pytest.raises(ValueError, match="L must be lower triangular"):
        gm.GaussianMixture([1.0], np.zeros((1, 2)), np.ones((1, 2, 2)), "full")
    with pytest.raises(ValueError, match="L must have a positive diagonal"):
        gm.GaussianMixture([1.0], np.zeros((1, 2)), -np.eye(2)[None], "full")
    with pytest.raises(ValueError, match="std must have positive entries; got min -1"):
        gm.GaussianMixture(
            [1.0], np.zeros((1, 2)), std=-np.ones((1, 2)), covariance_type="diag"
        )
    with pytest.raises(ValueError, match=r"std must have shape \(2, 2\)"):
        gm.GaussianMixture(
            [0.5, 0.5], np.zeros((2, 2)), std=np.ones(2), covariance_type="diag"
        )
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        gm.GaussianMixture([1.0], np.zeros((1, 2)), np.ones(1), "banded")


def test_the_scale_is_named_as_what_it_is():
    """L is only a Cholesky factor; diag and spherical take std, and each
    type refuses the other's parameter by name."""
    means = np.zeros((2, 2))
    diag = gm.GaussianMixture(
        [0.5, 0.5], means, covariance_type="diag", std=np.ones((2, 2))
    )
    assert diag.L is None and diag.std.shape == (2, 2) and diag.d == 2
    with pytest.raises(
        ValueError, match="L is not a parameter of covariance_type 'diag'; give std"
    ):
        gm.GaussianMixture([0.5, 0.5], means, np.ones((2, 2)), "diag")
    with pytest.raises(
        ValueError, match="std is not a parameter of covariance_type 'full'; give L"
    ):
        gm.GaussianMixture(
            [0.5, 0.5], means, np.eye(2)[None].repeat(2, 0), std=np.ones(2)
        )
    with pytest.raises(
        ValueError, match="std must be given for covariance_type 'spherical'"
    ):
        gm.GaussianMixture([0.5, 0.5], means, covariance_type="spherical")
    _, grads = gm.log_marginal_and_grad(diag, np.zeros((1, 2)))
    assert set(grads) == {"logits", "means", "std"}


def test_nan_data_and_wrong_dimension_are_refused():
    model = gm.GaussianMixture(
        [1.0], np.zeros((1, 2)), None, "spherical", std=np.ones(1)
    )
    with pytest.raises(ValueError, match="x contains NaN"):
        gm.log_marginal(model, [[0.0, np.nan]])
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 2\)"):
        gm.responsibilities(model, np.zeros((3, 3)))


def test_parameters_are_frozen_copies():
    w = np.array([0.5, 0.5])
    model = gm.GaussianMixture(w, np.zeros((2, 1)), None, "spherical", std=np.ones(2))
    w[0] = 7.0
    assert model.weights[0] == 0.5
    with pytest.raises(ValueError):
        model.weights[0] = 1.0


@pytest.mark.parametrize("covariance_type", TYPES)
def test_from_covariances_round_trips(covariance_type):
    rng = np.random.default_rng(5)
    model = random_mixture(rng, 3, 2, covariance_type)
    again = gm.GaussianMixture.from_covariances(
        model.weights, model.means, model.covariances(), covariance_type
    )
    np.testing.assert_allclose(scale_of(again), scale_of(model), rtol=1e-13, atol=1e-15)


# ------------------------------------------------- ELBO, KL and their identity


@pytest.mark.parametrize("covariance_type", TYPES)
def test_log_marginal_equals_elbo_plus_kl(covariance_type):
    rng = np.random.default_rng(6)
    model = random_mixture(rng, 4, 3, covariance_type)
    x = rng.normal(size=(30, 3)) * 3.0
    q_logits = 2.0 * rng.normal(size=(30, 4))
    lp = gm.log_marginal(model, x)
    elbo = gm.elbo(model, x, q_logits)
    kl = gm.kl_to_posterior(model, x, q_logits)
    assert np.all(kl > 0)
    # tolerance 1e-12 relative to |log p(x)|
    np.testing.assert_allclose(elbo + kl, lp, rtol=1e-12, atol=0)
    # at q = p(z|x) the KL is 0 and the ELBO is log p(x)
    log_r = gm.log_responsibilities(model, x)
    np.testing.assert_allclose(gm.kl_to_posterior(model, x, log_r), 0.0, atol=1e-13)
    np.testing.assert_allclose(gm.elbo(model, x, log_r), lp, rtol=1e-13)


def test_identity_check_catches_a_wrong_entropy():
    """Dropping the entropy term breaks log p = ELBO + KL by far more than 1e-12."""
    rng = np.random.default_rng(7)
    model = random_mixture(rng, 3, 2, "full")
    x = rng.normal(size=(5, 2))
    q_logits = rng.normal(size=(5, 3))
    q = np.exp(q_logits - logsumexp(q_logits, axis=1, keepdims=True))
    wrong_elbo = np.sum(q * gm.log_joint(model, x), axis=1)
    gap = (
        wrong_elbo + gm.kl_to_posterior(model, x, q_logits) - gm.log_marginal(model, x)
    )
    assert np.min(np.abs(gap)) > 1e-3


# ------------------------------------------------------------------ gradients


def _as_params(model, q_logits=None):
    key = scale_key(model.covariance_type)
    params = {"logits": model.logits, "means": model.means, key: scale_of(model)}
    if q_logits is not None:
        params["q_logits"] = q_logits
    return params


def _checker(fn, covariance_type, x, dout):
    """f_and_grad over named arrays for gradcheck; weights = softmax(logits)."""

    def f_and_grad(p):
        model = with_scale(
            p["logits"],
            p["means"],
            p[scale_key(covariance_type)],
            covariance_type,
            from_logits=True,
        )
        args = (p["q_logits"],) if "q_logits" in p else ()
        value, grads = fn(model, x, *args, dout=dout)
        return float(value @ dout), grads

    return f_and_grad


def _lower(covariance_type):
    # only the Cholesky factor L is lower triangular
    return ["L"] if covariance_type in ("full", "tied") else []


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize(
    "fn", [gm.log_marginal_and_grad, gm.elbo_and_grad, gm.kl_to_posterior_and_grad]
)
def test_gradients_match_finite_differences(covariance_type, fn):
    rng = np.random.default_rng(8)
    model = random_mixture(rng, 3, 3, covariance_type, spread=1.0)
    x = 2.0 * rng.normal(size=(6, 3))
    dout = rng.normal(size=6)
    q_logits = None if fn is gm.log_marginal_and_grad else rng.normal(size=(6, 3))
    # tolerance 1e-7 relative (refvi.verify.gradcheck)
    assert_gradcheck(
        _checker(fn, covariance_type, x, dout),
        _as_params(model, q_logits),
        lower_triangular=_lower(covariance_type),
    )


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_elbo_gradient_passes_taylor_test(covariance_type):
    rng = np.random.default_rng(9)
    model = random_mixture(rng, 3, 2, covariance_type, spread=1.0)
    x = rng.normal(size=(5, 2))
    q_logits = rng.normal(size=(5, 3))
    result = taylor_test(
        _checker(gm.elbo_and_grad, covariance_type, x, np.ones(5)),
        _as_params(model, q_logits),
        rng,
        lower_triangular=_lower(covariance_type),
    )
    assert result.ok, result.orders


def test_gradcheck_catches_a_wrong_L_gradient():
    """A gradient missing the log-determinant term fails the check."""
    rng = np.random.default_rng(10)
    model = random_mixture(rng, 2, 2, "full", spread=1.0)
    x = rng.normal(size=(4, 2))
    dout = np.ones(4)
    right = _checker(gm.log_marginal_and_grad, "full", x, dout)

    def wrong(p):
        value, grads = right(p)
        r = gm.responsibilities(
            gm.GaussianMixture.from_logits(p["logits"], p["means"], p["L"], "full"), x
        )
        G = r.sum(axis=0)
        diag = np.diagonal(p["L"], axis1=1, axis2=2)
        grads = dict(grads, L=grads["L"] + G[:, None, None] * np.eye(2) / diag[:, None])
        return value, grads

    result = gradcheck(wrong, _as_params(model), lower_triangular=["L"])
    assert not result.ok and "'L'" in result.message


def test_functions_do_not_mutate_inputs():
    rng = np.random.default_rng(11)
    model = random_mixture(rng, 3, 2, "tied")
    x = rng.normal(size=(5, 2))
    q_logits = rng.normal(size=(5, 3))
    x0, q0 = x.copy(), q_logits.copy()
    gm.elbo_and_grad(model, x, q_logits)
    gm.kl_to_posterior_and_grad(model, x, q_logits)
    gm.log_marginal_and_grad(model, x)
    assert np.array_equal(x, x0) and np.array_equal(q_logits, q0)


def test_q_logits_shape_is_checked():
    model = gm.GaussianMixture(
        [0.5, 0.5], np.zeros((2, 1)), None, "spherical", std=np.ones(2)
    )
    with pytest.raises(ValueError, match=r"q_logits must have shape \(3, 2\)"):
        gm.elbo(model, np.zeros((3, 1)), np.zeros((3, 3)))
