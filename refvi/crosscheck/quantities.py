"""What a reference case computes: one evaluation per quantity, from named inputs.

Each :class:`Quantity` maps the named inputs of a case (float arrays) and its
options (strings and numbers) to named outputs (float arrays) by calling
refvi's public functions, states the conventions a peer must follow to compute
the same numbers, and the relative tolerance each output is known to.

Output names: ``value`` is the quantity itself (per batch entry or per datum,
never summed); ``grad_<input>`` is the gradient of the SUM of ``value`` over
its entries (upstream gradient ``dout`` = ones) w.r.t. that input, with the
input's shape. A gradient w.r.t. a Cholesky factor is lower triangular (the
derivative w.r.t. each entry of the lower triangle, zero above); w.r.t. a
``log_std`` it is w.r.t. the log standard deviation; w.r.t. ``psi`` it is
w.r.t. the noise variance itself.

Tolerances are normwise relative: ``max |got - ref| / max |ref|`` over the
entries of one output. ``ACCURACY_SUITE`` (1e-12) is the accuracy measured
against a 50-digit mpmath evaluation over the stress corpus (docs/accuracy.md);
``CLOSED_FORM`` (1e-10) is the tolerance of a closed form confirmed by an
independent route (quadrature, dense formula) in refvi's tests, used where the
accuracy suite does not yet measure the function.
"""

from typing import NamedTuple

import numpy as np

from refvi import categorical, gaussian, mixture_kl
from refvi.gaussian import Gaussian
from refvi.inference import aggregate, vae
from refvi.inference.encoder import LinearEncoder
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lge
from refvi.models import mixture, mixture_em, mixture_prior
from refvi.models.linear_gaussian import LinearGaussian
from refvi.models.mixture import GaussianMixture
from refvi.models.mixture_prior import MixturePrior

__all__ = ["ACCURACY_SUITE", "CLOSED_FORM", "QUANTITIES"]

#: Normwise relative accuracy measured against 50-digit mpmath (docs/accuracy.md).
ACCURACY_SUITE = 1e-12
#: Tolerance of a closed form against an independent route in refvi's tests.
CLOSED_FORM = 1e-10

_SOURCE = {
    ACCURACY_SUITE: "accuracy suite: 50-digit mpmath over the stress corpus",
    CLOSED_FORM: "closed form vs an independent route (not in the accuracy corpus)",
}

KL_DIRECTION = (
    "KL(q || p) = E_q[log q - log p]: the expectation is under q, the "
    "distribution named first"
)
CHOLESKY = "scale_tril is the lower Cholesky factor L of the covariance, Sigma = L L^T"
LOG_STD = "log_std is the log standard deviation: Sigma = diag(exp(2 log_std))"
PER_DATUM = "value is per datum (shape (n,)), not summed or averaged"
SUMMED_GRADS = (
    "grad_<input> is the gradient of sum(value) w.r.t. that input, with its shape"
)
TRIL_GRAD = "a gradient w.r.t. a Cholesky factor is lower triangular (zero above)"
PSI_VARIANCE = "psi are noise variances; grad_psi is w.r.t. the variance itself"
W_ORIENTATION = "W has shape (d, k) (Bishop's orientation; components_.T in sklearn)"


class Quantity(NamedTuple):
    """One computation of the catalogue.

    Attributes
    ----------
    evaluate : callable
        ``evaluate(**inputs, **options) -> dict`` of float arrays.
    description : str
        What it computes, as a formula.
    conventions : tuple of str
        What a peer must match to compute the same numbers.
    rtol : float or dict
        The normwise relative tolerance of every output, or per output name
        (a name missing from the dict takes its ``"*"`` entry).
    """

    evaluate: object
    description: str
    conventions: tuple
    rtol: object

    def tolerance(self, output):
        """(rtol, source) of one output."""
        rtol = self.rtol
        if isinstance(rtol, dict):
            rtol = rtol.get(output, rtol["*"])
        return rtol, _SOURCE.get(rtol, "quadrature error estimate")


def _grads(grads, names):
    """Library gradients (in the library's key order) renamed ``grad_<name>``."""
    pairs = zip(names, grads.values(), strict=True)
    return {f"grad_{n}": np.asarray(g) for n, g in pairs}


# ---------------------------------------------------------------------------
# Gaussian and categorical.


def _kl(q, p, names):
    value, grads = gaussian.kl_and_grad(q, p)
    return {"value": value, **_grads(grads, names)}


def gaussian_kl_full(mean_q, scale_tril_q, mean_p, scale_tril_p):
    q = Gaussian(mean_q, scale_tril=scale_tril_q)
    p = Gaussian(mean_p, scale_tril=scale_tril_p)
    return _kl(q, p, ("mean_q", "scale_tril_q", "mean_p", "scale_tril_p"))


def gaussian_kl_diag(mean_q, log_std_q, mean_p, log_std_p):
    q = Gaussian(mean_q, log_std=log_std_q)
    p = Gaussian(mean_p, log_std=log_std_p)
    return _kl(q, p, ("mean_q", "log_std_q", "mean_p", "log_std_p"))


def gaussian_kl_mixed(mean_q, scale_tril_q, mean_p, log_std_p):
    q = Gaussian(mean_q, scale_tril=scale_tril_q)
    p = Gaussian(mean_p, log_std=log_std_p)
    return _kl(q, p, ("mean_q", "scale_tril_q", "mean_p", "log_std_p"))


def gaussian_kl_standard_normal(mean_q, log_std_q):
    q = Gaussian(mean_q, log_std=log_std_q)
    out = _kl(q, gaussian.standard_normal(q.d), ("mean_q", "log_std_q", "-", "-"))
    del out["grad_-"]
    return out


def gaussian_entropy(mean, scale_tril):
    value, grads = gaussian.entropy_and_grad(Gaussian(mean, scale_tril=scale_tril))
    return {"value": value, "grad_scale_tril": grads["scale_tril"]}


def gaussian_log_prob(mean, scale_tril, x):
    p = Gaussian(mean, scale_tril=scale_tril)
    value, grads = gaussian.log_prob_and_grad(p, x)
    return {
        "value": value,
        "grad_mean": grads["mean"],
        "grad_scale_tril": grads["scale_tril"],
        "grad_x": grads["x"],
    }


def categorical_kl(logits_q, logits_p):
    # the first argument is the distribution the expectation is under
    value, grads = categorical.kl_and_grad(logits_q, logits_p)
    return {"value": value, **_grads(grads, ("logits_q", "logits_p"))}


def categorical_entropy(logits):
    value, grads = categorical.entropy_and_grad(logits)
    return {"value": value, "grad_logits": grads["logits"]}


# ---------------------------------------------------------------------------
# Linear-Gaussian model (factor analysis, pPCA).


def lg_log_marginal(W, mu, psi, x):
    model = LinearGaussian(W, mu, psi)
    value, grads = lg.log_marginal_and_grad(model, x)
    return {
        "value": value,
        **{f"grad_{k}": grads[k] for k in ("W", "mu", "psi")},
        "cov": model.cov,
    }


def lg_posterior(W, mu, psi, x):
    post = lg.posterior(LinearGaussian(W, mu, psi), x)
    return {"m": post.m, "S": post.S}


def _lg_elbo(model, x, m_q, L_q, log_std_q, q_name):
    value, grads = lg.elbo_and_grad(model, x, m_q, L_q, log_std_q=log_std_q)
    kl = lg.kl_to_posterior(model, x, m_q, L_q, log_std_q=log_std_q)
    out = {"value": value, "kl_to_posterior": kl}
    for name in ("m_q", q_name, "W", "mu", "psi"):
        out[f"grad_{name}"] = grads[name]
    return out


def lg_elbo_full(W, mu, psi, x, m_q, L_q):
    return _lg_elbo(LinearGaussian(W, mu, psi), x, m_q, L_q, None, "L_q")


def lg_elbo_diag(W, mu, psi, x, m_q, log_std_q):
    return _lg_elbo(LinearGaussian(W, mu, psi), x, m_q, None, log_std_q, "log_std_q")


def lg_em_step(W, mu, psi, x, noise):
    model = LinearGaussian(W, mu, psi)
    new = lge.m_step(x, lge.e_step(x, model), noise=noise)
    return {"W": new.W, "mu": new.mu, "psi": new.psi}


# ---------------------------------------------------------------------------
# Gaussian mixture.


def _mixture(logits, means, L, std, covariance_type):
    return GaussianMixture.from_logits(logits, means, L, covariance_type, std=std)


def _mixture_grads(grads):
    """Model gradients: logits, means, and ``L`` or ``std`` (the library's keys)."""
    return {f"grad_{k}": v for k, v in grads.items() if k != "q_logits"}


def mixture_log_marginal(covariance_type, logits, means, x, L=None, std=None):
    model = _mixture(logits, means, L, std, covariance_type)
    value, grads = mixture.log_marginal_and_grad(model, x)
    return {
        "value": value,
        "responsibilities": mixture.responsibilities(model, x),
        **_mixture_grads(grads),
    }


def mixture_elbo(covariance_type, logits, means, x, q_logits, L=None, std=None):
    model = _mixture(logits, means, L, std, covariance_type)
    value, grads = mixture.elbo_and_grad(model, x, q_logits)
    return {
        "value": value,
        "kl_to_posterior": mixture.kl_to_posterior(model, x, q_logits),
        "grad_q_logits": grads["q_logits"],
        **_mixture_grads(grads),
    }


def mixture_em_step(covariance_type, reg_covar, logits, means, x, L=None, std=None):
    model = _mixture(logits, means, L, std, covariance_type)
    r = mixture_em.e_step(x, model)
    new = mixture_em.m_step(x, r, covariance_type, reg_covar=reg_covar)
    return {
        "responsibilities": r,
        "weights": np.asarray(new.weights),
        "means": new.means,
        "covariances": new.covariances(),
    }


def mixture_prior_posterior(weights, a, L_B, W, mu, psi, x):
    model = MixturePrior(weights, a, L_B, W, mu, psi)
    post = mixture_prior.posterior(model, x)
    return {
        "log_marginal": mixture_prior.log_marginal(model, x),
        "log_weights": post.log_weights,
        "m": post.m,
        "L_S": post.L_S,
    }


def mixture_kl_bounds(weights_q, means_q, L_q, weights_p, means_p, L_p, order):
    q = GaussianMixture(weights_q, means_q, L_q)
    p = GaussianMixture(weights_p, means_p, L_p)
    quad = mixture_kl.kl_quadrature(q, p, order=int(order))
    bounds = mixture_kl.kl_bounds(q, p)
    return {
        "kl": np.asarray(quad.value),
        "lower": np.asarray(bounds.lower),
        "upper": np.asarray(bounds.upper),
        "variational": np.asarray(mixture_kl.kl_variational(q, p)),
        "variational_upper_bound": np.asarray(
            mixture_kl.kl_variational_upper_bound(q, p)
        ),
    }


# ---------------------------------------------------------------------------
# Linear VAE and the aggregated posterior.

_VAE_GRADS = ("A", "c", "log_std", "W", "mu", "psi")


def _vae(A, c, log_std, W, mu, psi):
    return LinearEncoder(A, c, log_std=log_std), LinearGaussian(W, mu, psi)


def vae_elbo(A, c, log_std, W, mu, psi, x):
    encoder, model = _vae(A, c, log_std, W, mu, psi)
    value, grads = vae.elbo_and_grad(encoder, model, x, estimator="analytic")
    return {"value": value, **{f"grad_{k}": grads[k] for k in _VAE_GRADS}}


def vae_sgvb(A, c, log_std, W, mu, psi, x, eps, estimator):
    encoder, model = _vae(A, c, log_std, W, mu, psi)
    value, grads = vae.elbo_and_grad(encoder, model, x, eps, estimator=estimator)
    return {"value": value, **{f"grad_{k}": grads[k] for k in _VAE_GRADS}}


def aggregate_surgery(A, c, log_std, mean_data, cov_data):
    encoder = LinearEncoder(A, c, log_std=log_std)
    q_agg = aggregate.aggregate_gaussian(encoder, mean_data, cov_data)
    s = aggregate.surgery_gaussian(encoder, mean_data, cov_data)
    return {
        "aggregate_mean": q_agg.mean,
        "aggregate_cov": q_agg.cov,
        "expected_kl": np.asarray(s.expected_kl),
        "mutual_info": np.asarray(s.mutual_info),
        "kl_aggregate": np.asarray(s.kl_aggregate),
    }


# ---------------------------------------------------------------------------
# The registry.

_GAUSS = (KL_DIRECTION, CHOLESKY, LOG_STD, SUMMED_GRADS, TRIL_GRAD)
_LG = (
    "z ~ N(0, I_k), x | z ~ N(W z + mu, diag(psi))",
    W_ORIENTATION,
    PSI_VARIANCE,
    PER_DATUM,
    SUMMED_GRADS,
)
_MIX = (
    "p(x) = sum_k pi_k N(x; means_k, Sigma_k), pi = softmax(logits)",
    "covariance parameter by type: full L (K, d, d) and tied L (d, d) lower "
    "Cholesky factors; diag std (K, d) and spherical std (K,) standard "
    "deviations",
    PER_DATUM,
    SUMMED_GRADS,
    "grad_logits is w.r.t. the unnormalised logits of pi = softmax(logits)",
)
_VAE = (
    "encoder q(z | x_i) = N(A x_i + c, diag(exp(2 log_std))); decoder "
    "z ~ N(0, I_k), x | z ~ N(W z + mu, diag(psi))",
    W_ORIENTATION,
    PSI_VARIANCE,
    PER_DATUM,
    SUMMED_GRADS,
)

QUANTITIES = {
    "gaussian.kl_full": Quantity(
        gaussian_kl_full,
        "KL(q || p) of batched full-covariance normals, and its gradients",
        _GAUSS,
        ACCURACY_SUITE,
    ),
    "gaussian.kl_diag": Quantity(
        gaussian_kl_diag,
        "KL(q || p) of batched diagonal normals, and its gradients",
        _GAUSS,
        CLOSED_FORM,
    ),
    "gaussian.kl_mixed": Quantity(
        gaussian_kl_mixed,
        "KL(q || p), q full (scale_tril), p diagonal (log_std), and its gradients",
        _GAUSS,
        CLOSED_FORM,
    ),
    "gaussian.kl_standard_normal": Quantity(
        gaussian_kl_standard_normal,
        "KL(q || N(0, I)) of batched diagonal normals (the VAE's KL term)",
        _GAUSS,
        CLOSED_FORM,
    ),
    "gaussian.entropy": Quantity(
        gaussian_entropy,
        "H[N(mean, L L^T)] = d/2 (1 + log 2 pi) + sum_j log L_jj, batched",
        _GAUSS,
        ACCURACY_SUITE,
    ),
    "gaussian.log_prob": Quantity(
        gaussian_log_prob,
        "log N(x_i; mean, L L^T) per row of x, and its gradients",
        (CHOLESKY, PER_DATUM, SUMMED_GRADS, TRIL_GRAD),
        ACCURACY_SUITE,
    ),
    "categorical.kl": Quantity(
        categorical_kl,
        "KL(q || p) = sum_j q_j (log q_j - log p_j) of softmax(logits), batched",
        (
            KL_DIRECTION,
            "q = softmax(logits_q), p = softmax(logits_p) along the last axis",
            SUMMED_GRADS,
        ),
        ACCURACY_SUITE,
    ),
    "categorical.entropy": Quantity(
        categorical_entropy,
        "H = -sum_j p_j log p_j of p = softmax(logits), batched",
        ("p = softmax(logits) along the last axis", SUMMED_GRADS),
        ACCURACY_SUITE,
    ),
    "linear_gaussian.log_marginal": Quantity(
        lg_log_marginal,
        "log p(x_i) = log N(x_i; mu, C), its gradients, and the marginal "
        "covariance cov = C = W W^T + diag(psi)",
        _LG,
        ACCURACY_SUITE,
    ),
    "linear_gaussian.posterior": Quantity(
        lg_posterior,
        "p(z | x_i) = N(m_i, S), S = (I + W^T Psi^{-1} W)^{-1}, "
        "m_i = S W^T Psi^{-1} (x_i - mu)",
        (*_LG, "S is the posterior covariance (not a Cholesky factor), shared"),
        CLOSED_FORM,
    ),
    "linear_gaussian.elbo_full": Quantity(
        lg_elbo_full,
        "ELBO(q_i) = E_q[log p(x_i, z) - log q_i(z)], q_i = N(m_q_i, L_q L_q^T), "
        "with KL(q_i || p(z | x_i)) and the ELBO's gradients",
        (
            *_LG,
            "L_q is the lower Cholesky factor of q's covariance, shared by all i",
            TRIL_GRAD,
            KL_DIRECTION,
        ),
        ACCURACY_SUITE,
    ),
    "linear_gaussian.elbo_diag": Quantity(
        lg_elbo_diag,
        "ELBO(q_i) with q_i = N(m_q_i, diag(exp(2 log_std_q_i))), with "
        "KL(q_i || p(z | x_i)) and the ELBO's gradients",
        (*_LG, LOG_STD, KL_DIRECTION),
        CLOSED_FORM,
    ),
    "linear_gaussian.em_step": Quantity(
        lg_em_step,
        "one EM step of factor analysis (noise='diag') or pPCA "
        "(noise='isotropic') from the given parameters",
        (
            *_LG[:3],
            "E-step: the exact posterior; M-step: W = C_xm (S + C_mm)^{-1}, "
            "mu = xbar - W mbar, psi = var_x - rowsum(W * C_xm) (pPCA: its mean); "
            "the data averages divide by n",
        ),
        CLOSED_FORM,
    ),
    "mixture.log_marginal": Quantity(
        mixture_log_marginal,
        "log p(x_i) of a Gaussian mixture, the responsibilities "
        "r_ik = p(z = k | x_i), and the gradients of sum_i log p(x_i)",
        _MIX,
        ACCURACY_SUITE,
    ),
    "mixture.elbo": Quantity(
        mixture_elbo,
        "ELBO(q_i) = sum_k q_ik log p(x_i, z = k) + H(q_i), q_i = "
        "softmax(q_logits_i), with KL(q_i || p(z | x_i)) and the ELBO's gradients",
        (*_MIX, KL_DIRECTION),
        ACCURACY_SUITE,
    ),
    "mixture.em_step": Quantity(
        mixture_em_step,
        "one EM step of a Gaussian mixture from the given parameters: the "
        "E-step responsibilities and the M-step's weights, means and covariances",
        (
            *_MIX[:2],
            "covariances in scikit-learn's layout: full (K, d, d), tied (d, d), "
            "diag (K, d) variances, spherical (K,) variances",
            "reg_covar is added to every variance after the M-step (as "
            "scikit-learn does)",
        ),
        CLOSED_FORM,
    ),
    "mixture_prior.posterior": Quantity(
        mixture_prior_posterior,
        "z ~ sum_j pi_j N(a_j, L_B_j L_B_j^T), x | z ~ N(W z + mu, diag(psi)): "
        "log p(x_i) and the posterior sum_j r_ij N(m_ij, L_S_j L_S_j^T)",
        (
            W_ORIENTATION,
            PSI_VARIANCE,
            PER_DATUM,
            "log_weights are log r_ij = log P(j | x_i); L_S are lower Cholesky factors",
        ),
        {"*": CLOSED_FORM, "log_marginal": ACCURACY_SUITE},
    ),
    "mixture_kl.bounds": Quantity(
        mixture_kl_bounds,
        "KL(q || p) of two full Gaussian mixtures by Gauss-Hermite quadrature "
        "(order nodes per coordinate, converged to its error estimate), "
        "with the Durrieu-Thiran-Kelly bounds lower <= KL <= upper and the "
        "Hershey-Olsen approximation D_var and upper bound D_varUB (50 iterations)",
        (
            KL_DIRECTION,
            "L_q, L_p are lower Cholesky factors (K, d, d)",
            "only kl is the divergence itself; lower, upper and "
            "variational_upper_bound are bounds on it, variational an approximation",
        ),
        {"*": CLOSED_FORM, "kl": ACCURACY_SUITE},
    ),
    "vae.elbo": Quantity(
        vae_elbo,
        "the linear VAE's ELBO_i in closed form and its gradients w.r.t. the "
        "encoder and decoder parameters",
        _VAE,
        CLOSED_FORM,
    ),
    "vae.sgvb": Quantity(
        vae_sgvb,
        "a stochastic ELBO estimate at given noise eps (S, n, k), "
        "z_si = A x_i + c + exp(log_std) * eps_si, averaged over s, and its exact "
        "gradient at that eps; estimator 'kl' (SGVB-B: log p(x|z) sampled minus "
        "the analytic KL to N(0, I)), 'sampled' (SGVB-A: log p(x, z) - log q(z) "
        "sampled), 'path' (SGVB-A without the score term) or 'iwae' (log of the "
        "mean of the S importance weights)",
        (
            *_VAE,
            "eps is standard-normal noise, shape (S, n, k); value averages over "
            "the S draws",
            "estimator 'path': grad_<input> is the path-derivative estimate, the "
            "gradient of value at fixed eps without the score term -d/dphi "
            "log q_phi(z) at fixed z (it has mean zero); it is NOT the gradient "
            "of value w.r.t. the encoder (A, c, log_std)",
        ),
        CLOSED_FORM,
    ),
    "aggregate.surgery": Quantity(
        aggregate_surgery,
        "for data x ~ N(mean_data, cov_data): the aggregated posterior q(z) = "
        "N(A m + c, A C A^T + Sigma_q) and ELBO surgery's E_x KL(q(z|x) || p(z)) "
        "= I_q(x; z) + KL(q(z) || p(z))",
        (_VAE[0], KL_DIRECTION, "p(z) = N(0, I_k); aggregate_cov is a covariance"),
        CLOSED_FORM,
    ),
}
