"""PyTorch (optional: skipped without torch) against refvi's reference cases:
torch.distributions.kl_divergence for Normal, MultivariateNormal,
LowRankMultivariateNormal, Independent(Normal) and Categorical over batches,
and autograd gradients of a PyTorch linear-VAE ELBO against refvi's
handwritten ones. Everything in float64; each test prints its worst error.

Conventions (docs/conventions.md): kl_divergence(q, p) is KL(q || p), the
same argument order as refvi's kl(q, p); Normal takes a standard deviation
(refvi's log_std is its log); Normal's KL is per coordinate and
Independent(Normal, 1) sums it; LowRankMultivariateNormal(loc, cov_factor=W,
cov_diag=psi) is the linear-Gaussian marginal N(mu, W W^T + diag(psi)).
"""

import numpy as np
import pytest

from refvi.crosscheck import compare, get_case

torch = pytest.importorskip("torch")
D = torch.distributions


def t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def check(fn, name, **kw):
    report = compare(fn, name, convert=t, **kw)
    print(report)
    assert report.passed, str(report)
    return report


def leaf(a):
    return t(a).clone().requires_grad_(True)


def value_and_grads(value, wrt):
    """value (per entry) and autograd gradients of its sum w.r.t. ``wrt``."""
    grads = torch.autograd.grad(value.sum(), list(wrt.values()))
    named = zip(wrt, grads, strict=True)
    return {"value": value.detach(), **{f"grad_{k}": g for k, g in named}}


@pytest.mark.parametrize(
    "name",
    [
        "gaussian.kl_full.ordinary",
        "gaussian.kl_full.offset-1e8",
    ],
)
def test_multivariate_normal_kl_and_its_autograd_gradients(name):
    def kl(mean_q, scale_tril_q, mean_p, scale_tril_p):
        wrt = {
            "mean_q": leaf(mean_q),
            "scale_tril_q": leaf(scale_tril_q),
            "mean_p": leaf(mean_p),
            "scale_tril_p": leaf(scale_tril_p),
        }
        q = D.MultivariateNormal(wrt["mean_q"], scale_tril=wrt["scale_tril_q"])
        p = D.MultivariateNormal(wrt["mean_p"], scale_tril=wrt["scale_tril_p"])
        return value_and_grads(D.kl_divergence(q, p), wrt)

    # Convention: torch's KL reads the whole of q's scale_tril (its trace term
    # multiplies the factors), so autograd gives entries ABOVE the diagonal of
    # grad_scale_tril_q; refvi's gradient is w.r.t. the free (lower) entries.
    # Their lower triangles agree; the upper one is reported, not compared.
    def lower(**kw):
        out = kl(**kw)
        upper = torch.triu(out["grad_scale_tril_q"], 1)
        assert float(upper.abs().max()) > 0.1  # the difference is real
        out["grad_scale_tril_q"] = torch.tril(out["grad_scale_tril_q"])
        return out

    report = compare(kl, name, convert=t)
    assert [o.name for o in report.failures] == ["grad_scale_tril_q"]
    check(lower, name)


@pytest.mark.parametrize(
    "name", ["gaussian.kl_full.cond-1e10", "gaussian.kl_full.near-equal-1e-8"]
)
def test_multivariate_normal_kl_value_on_the_stress_cases(name):
    """torch's KL from triangular solves of the factors holds 1e-12 at condition
    1e10 and for two normals of scale 1e-8 (their gradients are not compared
    here)."""

    def kl(mean_q, scale_tril_q, mean_p, scale_tril_p):
        q = D.MultivariateNormal(mean_q, scale_tril=scale_tril_q)
        p = D.MultivariateNormal(mean_p, scale_tril=scale_tril_p)
        return {"value": D.kl_divergence(q, p)}

    check(kl, name, outputs=["value"])


def test_independent_normal_and_normal_kl_match_the_diagonal_case():
    def kl(mean_q, log_std_q, mean_p, log_std_p):
        wrt = {
            "mean_q": leaf(mean_q),
            "log_std_q": leaf(log_std_q),
            "mean_p": leaf(mean_p),
            "log_std_p": leaf(log_std_p),
        }
        q = D.Independent(D.Normal(wrt["mean_q"], wrt["log_std_q"].exp()), 1)
        p = D.Independent(D.Normal(wrt["mean_p"], wrt["log_std_p"].exp()), 1)
        return value_and_grads(D.kl_divergence(q, p), wrt)

    check(kl, "gaussian.kl_diag.ordinary")

    def per_coordinate(mean_q, log_std_q, mean_p, log_std_p):
        q = D.Normal(mean_q, log_std_q.exp())
        p = D.Normal(mean_p, log_std_p.exp())
        return {"value": D.kl_divergence(q, p)}  # (B, d): not summed

    with pytest.raises(ValueError, match=r"has shape \(4, 3\); expected \(4,\)"):
        compare(
            per_coordinate, "gaussian.kl_diag.ordinary", outputs=["value"], convert=t
        )
    check(
        lambda **kw: {"value": per_coordinate(**kw)["value"].sum(-1)},
        "gaussian.kl_diag.ordinary",
        outputs=["value"],
    )


def test_normal_kl_to_the_standard_normal():
    def kl(mean_q, log_std_q):
        wrt = {"mean_q": leaf(mean_q), "log_std_q": leaf(log_std_q)}
        q = D.Independent(D.Normal(wrt["mean_q"], wrt["log_std_q"].exp()), 1)
        zero = torch.zeros_like(mean_q)
        p = D.Independent(D.Normal(zero, torch.ones_like(mean_q)), 1)
        return value_and_grads(D.kl_divergence(q, p), wrt)

    check(kl, "gaussian.kl_standard_normal.ordinary")


def test_kl_divergence_argument_order_is_refvis():
    """kl_divergence(q, p) = KL(q || p) = refvi's kl(q, p); swapping fails."""

    def swapped(mean_q, scale_tril_q, mean_p, scale_tril_p):
        q = D.MultivariateNormal(mean_q, scale_tril=scale_tril_q)
        p = D.MultivariateNormal(mean_p, scale_tril=scale_tril_p)
        return {"value": D.kl_divergence(p, q)}

    report = compare(swapped, "gaussian.kl_full.ordinary", outputs=["value"], convert=t)
    assert not report.passed


def test_low_rank_multivariate_normal_is_the_linear_gaussian_marginal():
    def log_marginal(W, mu, psi, x):
        wrt = {"W": leaf(W), "mu": leaf(mu), "psi": leaf(psi)}
        p = D.LowRankMultivariateNormal(
            wrt["mu"], cov_factor=wrt["W"], cov_diag=wrt["psi"]
        )
        out = value_and_grads(p.log_prob(x), wrt)
        return {**out, "cov": p.covariance_matrix.detach()}

    check(log_marginal, "linear_gaussian.log_marginal.ordinary")


def test_low_rank_kl_to_a_full_normal():
    """LowRankMultivariateNormal in a KL: q = N(mu, W W^T + diag(psi)) vs the
    case's full p, against refvi's full KL with q's Cholesky factor."""
    from refvi import gaussian

    rng = np.random.default_rng(7)
    W, mu, psi = rng.normal(size=(3, 2)), rng.normal(size=3), rng.uniform(0.5, 1, 3)
    L_p = np.linalg.cholesky(np.cov(rng.normal(size=(3, 10))) + np.eye(3))
    m_p = rng.normal(size=3)
    ref = gaussian.kl(
        gaussian.Gaussian(mu, cov=W @ W.T + np.diag(psi)),
        gaussian.Gaussian(m_p, scale_tril=L_p),
    )
    q = D.LowRankMultivariateNormal(t(mu), cov_factor=t(W), cov_diag=t(psi))
    p = D.MultivariateNormal(t(m_p), scale_tril=t(L_p))
    got = float(D.kl_divergence(q, p))
    print(
        f"low-rank KL: refvi {float(ref)!r}, torch {got!r}, "
        f"relative error {abs(got - ref) / abs(ref):.3g}"
    )
    assert abs(got - ref) <= 1e-12 * abs(ref)


@pytest.mark.parametrize(
    "name", ["categorical.kl.ordinary", "categorical.kl.extreme-logits"]
)
def test_categorical_kl_over_batches(name):
    def kl(logits_q, logits_p):
        wrt = {"logits_q": leaf(logits_q), "logits_p": leaf(logits_p)}
        q = D.Categorical(logits=wrt["logits_q"])
        p = D.Categorical(logits=wrt["logits_p"])
        return value_and_grads(D.kl_divergence(q, p), wrt)

    check(kl, name)


def _vae_terms(A, c, log_std, W, mu, psi, x):
    s = log_std.exp()
    m = x @ A.T + c
    return s, m


def torch_vae_elbo(A, c, log_std, W, mu, psi, x):
    """The linear VAE's closed-form ELBO_i written in PyTorch."""
    wrt = {
        k: leaf(v)
        for k, v in dict(A=A, c=c, log_std=log_std, W=W, mu=mu, psi=psi).items()
    }
    A, c, log_std, W, mu, psi = wrt.values()
    s, m = _vae_terms(A, c, log_std, W, mu, psi, x)
    r = x - m @ W.T - mu
    # E_q ||x - W z - mu||^2_Psi = residual at the mean + tr(W^T Psi^{-1} W S)
    quad = (r**2 / psi).sum(-1) + ((W**2 / psi[:, None]) * s**2).sum()
    ell = -0.5 * (np.log(2 * np.pi) * x.shape[1] + psi.log().sum() + quad)
    q = D.Independent(D.Normal(m, s.expand_as(m)), 1)
    prior = D.Independent(D.Normal(torch.zeros_like(m), torch.ones_like(m)), 1)
    return value_and_grads(ell - D.kl_divergence(q, prior), wrt)


def torch_vae_sgvb(A, c, log_std, W, mu, psi, x, eps, estimator):
    """SGVB-B at given eps: log p(x|z) sampled minus the analytic KL, averaged."""
    assert estimator == "kl"
    wrt = {
        k: leaf(v)
        for k, v in dict(A=A, c=c, log_std=log_std, W=W, mu=mu, psi=psi).items()
    }
    A, c, log_std, W, mu, psi = wrt.values()
    s, m = _vae_terms(A, c, log_std, W, mu, psi, x)
    z = m + s * eps  # (S, n, k)
    lik = D.Independent(D.Normal(z @ W.T + mu, psi.sqrt()), 1)
    q = D.Independent(D.Normal(m, s.expand_as(m)), 1)
    prior = D.Independent(D.Normal(torch.zeros_like(m), torch.ones_like(m)), 1)
    value = lik.log_prob(x).mean(0) - D.kl_divergence(q, prior)
    return value_and_grads(value, wrt)


def test_autograd_gradients_of_a_torch_linear_vae_elbo_match_refvi():
    check(torch_vae_elbo, "vae.elbo.ordinary")
    check(torch_vae_sgvb, "vae.sgvb.kl")


def test_a_torch_reparameterized_gradient_passes_the_estimator_test():
    from refvi.crosscheck import check_estimator

    case = get_case("vae.elbo.ordinary")
    inputs = {k: t(v) for k, v in case.inputs.items()}

    def draw(eps):
        return torch_vae_sgvb(**inputs, eps=t(eps)[None], estimator="kl")

    r = check_estimator(draw, case, 2000, np.random.default_rng(5), noise_shape=(4, 2))
    print(r)
    assert r.passed and r.detectable_relative_bias < 0.05
