"""ELBO gradient estimators of refvi.inference.estimators, each by another route.

- at fixed eps every estimator's gradient is the exact gradient of its value
  (central differences, relative error <= 1e-7);
- pathwise estimators: their expectation over eps by Gauss-Hermite quadrature
  equals the closed-form ELBO and its analytic gradient (1e-10 relative), and
  the analytic gradient equals finite differences of the closed form (1e-7);
- the score-function estimator: a Monte Carlo z-test against the analytic
  gradient, shown to reject a planted 5% bias;
- path derivative: zero variance at q = p(z | x), reparameterization not;
- IWAE: monotone in K, between the ELBO and log p(x), K = 1 is SGVB-A.
"""

import numpy as np
import pytest
from scipy import stats

from refvi.inference import estimators as est
from refvi.inference.encoder import QParams
from refvi.models import linear_gaussian as lg
from refvi.verify.gradcheck import assert_gradcheck, gradcheck
from refvi.verify.montecarlo import MCEstimate, mc_mean, z_test
from refvi.verify.quadrature import expect_gaussian

D, K, N = 3, 2, 4


def make(seed=0, form="diag"):
    rng = np.random.default_rng(seed)
    model = lg.LinearGaussian(
        rng.normal(size=(D, K)), rng.normal(size=D), rng.uniform(0.5, 1.5, size=D)
    )
    x = rng.normal(size=(N, D))
    m = rng.normal(scale=0.5, size=(N, K))
    if form == "diag":
        q = QParams(m, rng.uniform(-0.7, 0.2, size=(N, K)))
    else:
        q = QParams(
            m,
            None,
            np.tril(rng.normal(scale=0.3, size=(K, K)), -1)
            + np.diag(rng.uniform(0.4, 1.0, K)),
        )
    return model, x, q, rng.uniform(0.5, 1.5, size=N), rng


def q_key(q):
    return "L_q" if q.L is not None else "log_std_q"


def as_params(model, q):
    return {
        "m_q": q.m,
        q_key(q): q.L if q.L is not None else q.log_std,
        "W": model.W,
        "mu": model.mu,
        "psi": model.psi,
    }


def from_params(p, form):
    model = lg.LinearGaussian(p["W"], p["mu"], p["psi"])
    q = (
        QParams(p["m_q"], p["log_std_q"])
        if form == "diag"
        else QParams(p["m_q"], None, p["L_q"])
    )
    return model, q


def scalar_fn(fn, x, dout, form, **kw):
    def f(p):
        model, q = from_params(p, form)
        value, grads = fn(model, x, q, dout=dout, **kw)
        return float(dout @ value), grads

    return f


PATHWISE = {
    "kl": est.ESTIMATORS["kl"],
    "entropy": est.ESTIMATORS["entropy"],
    "sampled": est.ESTIMATORS["sampled"],
    "path": est.ESTIMATORS["path"],
}


@pytest.mark.parametrize("form", ["diag", "full"])
@pytest.mark.parametrize("name", [*PATHWISE, "iwae"])
def test_gradient_at_fixed_eps_matches_finite_differences(name, form):
    model, x, q, dout, rng = make(1, form)
    eps = rng.normal(size=(3, N, K))
    fn = est.iwae_and_grad if name == "iwae" else PATHWISE[name]
    params = as_params(model, q)
    if name == "path":
        # the path derivative is not the gradient of its value: only theta is
        params = {k: params[k] for k in ("W", "mu", "psi")}
        base = as_params(model, q)

        def f(p):
            return scalar_fn(fn, x, dout, form, eps=eps)({**base, **p})

        assert_gradcheck(f, params, rtol=1e-7)
        return
    assert_gradcheck(scalar_fn(fn, x, dout, form, eps=eps), params, rtol=1e-7)


@pytest.mark.parametrize("name", ["kl", "sampled"])
def test_gradient_with_equal_weights_matches_finite_differences(name):
    # equal weights c_si (a constant dout, the default) take their own route
    # to the psi gradient's sum_n c_n u_nj^2
    model, x, q, _, rng = make(5, "diag")
    eps = rng.normal(size=(2, N, K))
    fn = PATHWISE[name]
    dout = np.full(N, 0.7)
    params = as_params(model, q)
    assert_gradcheck(scalar_fn(fn, x, dout, "diag", eps=eps), params, rtol=1e-7)
    # and it is the sum of the gradients over two halves of the data, each
    # taking the weighted route (the gradient is linear in dout)
    half = np.arange(N) < N // 2
    halves = [fn(model, x, q, eps, dout=0.7 * h)[1]["psi"] for h in (half, ~half)]
    np.testing.assert_allclose(
        fn(model, x, q, eps, dout=dout)[1]["psi"], sum(halves), rtol=1e-12
    )


@pytest.mark.parametrize("form", ["diag", "full"])
def test_analytic_gradient_matches_finite_differences_of_closed_form(form):
    model, x, q, dout, _ = make(2, form)

    def f(p):
        model, q = from_params(p, form)
        value, grads = est.elbo_analytic_and_grad(model, x, q, dout=dout)
        return float(dout @ value), grads

    assert_gradcheck(f, as_params(model, q), rtol=1e-7)


def quadrature_mean(fn, model, x, q, dout):
    """E over eps of each sample's value and gradients, by Gauss-Hermite in k = 2.

    eps_si = u_s for every datum i: each datum's term depends on its own eps
    only, so by linearity the node sum is the expectation of the sum over data.
    """
    keys = list(as_params(model, q))

    def per_node(u):
        eps = np.broadcast_to(u[:, None, :], (u.shape[0], N, K))
        value, grads = fn(model, x, q, eps, dout=dout, per_sample=True)
        parts = [value] + [grads[k].reshape(u.shape[0], -1) for k in keys]
        return np.concatenate(parts, axis=1)

    res = expect_gaussian(per_node, np.zeros(K), np.eye(K), order=12)
    out, at = {}, N
    for key in keys:
        size = as_params(model, q)[key].size
        out[key] = res.value[at : at + size].reshape(as_params(model, q)[key].shape)
        at += size
    return res.value[:N], out, res.error


@pytest.mark.parametrize("form", ["diag", "full"])
@pytest.mark.parametrize("name", list(PATHWISE))
def test_expectation_over_eps_by_quadrature_equals_analytic(name, form):
    model, x, q, dout, _ = make(3, form)
    value, grads, err = quadrature_mean(PATHWISE[name], model, x, q, dout)
    exact, exact_grads = est.elbo_analytic_and_grad(model, x, q, dout=dout)
    assert np.max(err) < 1e-12  # the integrands are polynomials of degree <= 4
    np.testing.assert_allclose(value, exact, rtol=1e-10, atol=0)
    for key, g in exact_grads.items():
        np.testing.assert_allclose(
            grads[key], g, rtol=1e-10, atol=1e-10 * np.max(np.abs(g))
        )


def test_quadrature_route_catches_a_biased_estimator():
    model, x, q, dout, _ = make(3, "diag")

    def biased(*args, **kw):
        value, grads = est.ESTIMATORS["kl"](*args, **kw)
        return value, {**grads, "W": grads["W"] * 1.001}

    _, grads, _ = quadrature_mean(biased, model, x, q, dout)
    exact = est.elbo_analytic_and_grad(model, x, q, dout=dout)[1]
    assert not np.allclose(grads["W"], exact["W"], rtol=1e-10, atol=0)


# ---------------------------------------------------------------------------
# Score function: Monte Carlo z-tests.

#: Per-test false-failure rate 1e-6 (two-sided, Bonferroni over the entries).
ALPHA = 1e-6
N_SIGMA = float(stats.norm.isf(ALPHA / 2))  # 4.89


#: Samples per test: a planted 5% bias in the score-function (q) block is
#: rejected with power >= 0.999 (see the test); the baseline needs fewer.
SCORE_SAMPLES = {None: 320000, "analytic": 80000}


def score_mc(form, baseline, S=None, seed=11):
    """Per-sample score-function gradients: their MCEstimate over S samples,
    the analytic gradient, and the number of q entries (listed first)."""
    S = SCORE_SAMPLES[baseline] if S is None else S
    model, x, q, dout, _ = make(4, form)
    eps = np.random.default_rng(seed).normal(size=(S, N, K))
    b = None if baseline is None else est.elbo_analytic_and_grad(model, x, q)[0]
    _, grads = est.elbo_score_and_grad(
        model, x, q, eps, baseline=b, dout=dout, per_sample=True
    )
    keys = ["m_q", q_key(q), "W", "mu", "psi"]
    samples = np.concatenate([grads[k].reshape(S, -1) for k in keys], axis=1)
    exact_grads = est.elbo_analytic_and_grad(model, x, q, dout=dout)[1]
    exact = np.concatenate([exact_grads[k].ravel() for k in keys])
    n_q = 2 * N * K
    if q.L is not None:  # entries above the diagonal of L_q are not parameters
        L_cols = np.r_[
            : N * K, N * K + np.flatnonzero(np.tril(np.ones((K, K))).ravel())
        ]
        keep = np.r_[L_cols, np.arange(N * K + K * K, exact.size)]
        samples, exact = samples[:, keep], exact[keep]
        n_q = N * K + K * (K + 1) // 2
    return mc_mean(samples), exact, n_q


@pytest.mark.parametrize("form", ["diag", "full"])
@pytest.mark.parametrize("baseline", [None, "analytic"])
def test_score_function_mean_passes_z_test_and_rejects_planted_bias(form, baseline):
    """All entries (q and decoder blocks) lie within the Bonferroni threshold
    Phi^{-1}(1 - 1e-6 / (2 m)) for m entries: false-failure rate <= 1e-6.

    The same estimate with its score-function part (the q gradients) scaled
    by 1.05 is rejected. Power: the largest shift of a q entry, 0.05 |g| / se,
    exceeds the threshold by >= 3.1, so a run rejects with probability
    >= 0.999 (about 0.9999 at these sample sizes)."""
    estimate, exact, n_q = score_mc(form, baseline)
    result = z_test(estimate, exact, n_sigma=N_SIGMA)
    assert result.ok, (np.max(np.abs(result.z)), result.threshold)
    scale = np.ones_like(exact)
    scale[:n_q] = 1.05
    biased = MCEstimate(estimate.mean * scale, estimate.se, estimate.n)
    assert not z_test(biased, exact, n_sigma=N_SIGMA).ok
    shift = np.max(np.abs(0.05 * exact[:n_q]) / estimate.se[:n_q])
    power = stats.norm.sf(result.threshold - shift)
    assert power > 0.999, power


def test_baseline_reduces_score_function_variance():
    no_b, _, n_q = score_mc("diag", None, S=2000)
    with_b, _, _ = score_mc("diag", "analytic", S=2000)
    assert np.mean(with_b.se[:n_q]) < np.mean(no_b.se[:n_q])


# ---------------------------------------------------------------------------
# Path derivative at the exact posterior.


@pytest.mark.parametrize("form", ["diag", "full"])
def test_path_derivative_has_zero_variance_at_the_posterior(form):
    rng = np.random.default_rng(5)
    W = rng.normal(size=(D, K))
    if form == "diag":  # orthogonal columns and isotropic noise: S is diagonal
        W = np.linalg.qr(W)[0] * np.array([1.5, 0.7])
        model = lg.LinearGaussian(W, rng.normal(size=D), np.full(D, 0.6))
    else:
        model = lg.LinearGaussian(W, rng.normal(size=D), rng.uniform(0.5, 1.5, D))
    x = rng.normal(size=(N, D))
    post = lg.posterior(model, x)
    if form == "diag":
        np.testing.assert_allclose(post.S, np.diag(np.diag(post.S)), atol=1e-15)
        q = QParams(post.m, np.broadcast_to(0.5 * np.log(np.diag(post.S)), (N, K)))
    else:
        q = QParams(post.m, None, post.L_S)
    eps = rng.normal(size=(200, N, K))
    _, path = est.elbo_path_derivative_and_grad(model, x, q, eps, per_sample=True)
    _, rep = est.elbo_reparam_and_grad(model, x, q, eps, form="kl", per_sample=True)
    for key in ("m_q", q_key(q)):
        scale = np.max(np.abs(rep[key]))
        assert np.max(np.std(path[key], axis=0)) <= 1e-12 * max(scale, 1.0)
        assert np.max(np.abs(path[key])) <= 1e-12 * max(scale, 1.0)
        assert np.max(np.std(rep[key], axis=0)) > 1e-2


# ---------------------------------------------------------------------------
# IWAE.


@pytest.mark.parametrize("form", ["diag", "full"])
def test_iwae_with_one_sample_is_the_sgvb_a_estimator(form):
    model, x, q, dout, rng = make(6, form)
    eps = rng.normal(size=(1, N, K))
    v1, g1 = est.iwae_and_grad(model, x, q, eps, dout=dout)
    v2, g2 = est.elbo_reparam_and_grad(model, x, q, eps, form="sampled", dout=dout)
    np.testing.assert_allclose(v1, v2, rtol=1e-14)
    for key in g2:
        np.testing.assert_allclose(g1[key], g2[key], rtol=1e-12, atol=1e-14)


def test_iwae_is_monotone_in_k_between_elbo_and_log_marginal():
    """E IWAE_K by Monte Carlo (R replicates) for K = 1, 2, 8, 64, per datum:
    the differences between consecutive K are positive beyond their standard
    errors (common random numbers), IWAE_1 matches the ELBO within 5 s.e.,
    and IWAE_K <= log p(x) within 5 s.e., the gap shrinking with K."""
    model, x, q, _, _ = make(7, "diag")
    q = QParams(q.m, q.log_std + 0.3)  # a poor q: a visible gap to close
    rng = np.random.default_rng(8)
    R = 4000
    eps = rng.normal(size=(64, R, N, K))
    xs = np.tile(x, (R, 1))
    qs = QParams(np.tile(q.m, (R, 1)), np.tile(q.log_std, (R, 1)))
    Ks = (1, 2, 8, 64)
    bounds = np.stack(
        [
            est.iwae_and_grad(model, xs, qs, eps[:k].reshape(k, R * N, K))[0].reshape(
                R, N
            )
            for k in Ks
        ]
    )  # (4, R, N)
    elbo = est.elbo_analytic_and_grad(model, x, q)[0]
    log_px = lg.log_marginal(model, x)
    assert z_test(mc_mean(bounds[0]), elbo).ok
    for j in range(len(Ks) - 1):
        diff = mc_mean(bounds[j + 1] - bounds[j])
        assert np.all(diff.mean - 5 * diff.se > 0)
    for j in range(len(Ks)):
        e = mc_mean(bounds[j])
        assert np.all(e.mean <= log_px + 5 * e.se)
    gap = log_px - mc_mean(bounds[-1]).mean
    assert np.all(gap < 0.1 * (log_px - elbo))


# ---------------------------------------------------------------------------
# Bad input.


def test_bad_input_raises_naming_the_argument():
    model, x, q, _, rng = make(9)
    eps = rng.normal(size=(2, N, K))
    with pytest.raises(ValueError, match="eps"):
        est.elbo_reparam_and_grad(model, x, q, eps[:, :, :1])
    with pytest.raises(ValueError, match="eps"):
        est.iwae_and_grad(model, x, q, eps[0])
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        est.elbo_score_and_grad(model, bad, q, eps)
    with pytest.raises(ValueError, match="q.m"):
        est.elbo_path_derivative_and_grad(model, x, QParams(q.m[:, :1], q.log_std), eps)
    with pytest.raises(ValueError, match="form"):
        est.elbo_reparam_and_grad(model, x, q, eps, form="kk")
    with pytest.raises(ValueError, match="baseline"):
        est.elbo_score_and_grad(model, x, q, eps, baseline=np.zeros(N + 1))


def test_estimators_do_not_mutate_inputs():
    model, x, q, dout, rng = make(10, "full")
    eps = rng.normal(size=(2, N, K))
    copies = [a.copy() for a in (x, q.m, q.L, eps, dout)]
    for fn in [*PATHWISE.values(), est.ESTIMATORS["score"], est.iwae_and_grad]:
        fn(model, x, q, eps, dout=dout)
    for a, b in zip(copies, (x, q.m, q.L, eps, dout), strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradcheck_catches_a_wrong_pathwise_gradient():
    model, x, q, dout, rng = make(1, "diag")
    eps = rng.normal(size=(3, N, K))

    def wrong(p):
        value, grads = scalar_fn(est.ESTIMATORS["kl"], x, dout, "diag", eps=eps)(p)
        return value, {**grads, "log_std_q": grads["log_std_q"] * 0.999}

    assert not gradcheck(wrong, as_params(model, q)).ok


@pytest.mark.parametrize("form", ["diag", "full"])
def test_sgvb_a_gradient_equals_the_analytic_entropy_gradient_per_sample(form):
    """For a Gaussian q, log q(m + L eps) = log N(eps; 0, I) - log det L: its
    total derivative is that of -H[q], so SGVB-A and the analytic-entropy
    estimator differ in value but not in gradient, sample by sample."""
    model, x, q, dout, rng = make(12, form)
    eps = rng.normal(size=(5, N, K))
    va, ga = est.elbo_reparam_and_grad(
        model, x, q, eps, form="sampled", dout=dout, per_sample=True
    )
    vb, gb = est.elbo_reparam_and_grad(
        model, x, q, eps, form="entropy", dout=dout, per_sample=True
    )
    assert np.max(np.abs(va - vb)) > 1e-2
    for key in ga:
        np.testing.assert_allclose(
            ga[key], gb[key], rtol=1e-12, atol=1e-13 * np.max(np.abs(gb[key]))
        )
