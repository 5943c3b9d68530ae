"""KL divergences involving Gaussian mixtures: KL(N||mix), KL(mix||N), KL(mix||mix).

None has a closed form. Three routes, each with its own notion of accuracy:

* :func:`kl_quadrature` — Gauss-Hermite under each component of p, d <= 3,
  ``QuadResult(value, error)`` with the error estimated by refinement;
* :func:`kl_montecarlo` — any d, ``MCEstimate(mean, se, n)``;
* closed-form approximations and bounds from the component pairs:
  :func:`kl_variational` (Hershey & Olsen 2007, D_var: an approximation, NOT a
  bound), :func:`kl_variational_upper_bound` (Hershey & Olsen 2007, D_varUB: a
  true upper bound at every iterate) and :func:`kl_bounds` (Durrieu, Thiran &
  Kelly 2012: a true lower and a true upper bound).

p and q may each be a ``refvi.gaussian.Gaussian`` / ``DiagGaussian`` or a
``refvi.models.mixture.GaussianMixture`` of any covariance type; a Gaussian is
a mixture with one component. Derivations: ``derivations/mixture_kl.md`` (MK.n).

References: J. R. Hershey and P. A. Olsen, "Approximating the Kullback Leibler
divergence between Gaussian mixture models", ICASSP 2007. J.-L. Durrieu,
J.-Ph. Thiran and F. Kelly, "Lower and upper bounds for approximation of the
Kullback-Leibler divergence between Gaussian mixture models", ICASSP 2012.
"""

from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from refvi import gaussian
from refvi._validate import check_int, check_rng, cholesky_of_spd
from refvi.gaussian import Gaussian, _log_prob_chol
from refvi.models import mixture
from refvi.models.mixture import GaussianMixture
from refvi.verify.montecarlo import mc_mean
from refvi.verify.quadrature import QuadResult, expect_gaussian

#: Largest dimension accepted by :func:`kl_quadrature` (tensor rule: order^d nodes).
MAX_QUADRATURE_DIM = 3

#: Default number of alternating updates (MK.14) in :func:`kl_variational_upper_bound`.
DEFAULT_N_ITER = 50


class KLBounds(NamedTuple):
    """A lower and an upper bound on KL(p || q); (MK.11)-(MK.12)."""

    lower: float
    upper: float


# ---------------------------------------------------------------------------
# Private kernels: no argument checking.


def _as_mixture(dist, name):
    """``dist`` as a full-covariance GaussianMixture with positive weights.

    A Gaussian becomes a one-component mixture; components of weight exactly
    zero are dropped (they contribute to neither density nor expectation).
    """
    if isinstance(dist, gaussian.DiagGaussian):
        dist = dist.to_full()
    if isinstance(dist, Gaussian):
        return GaussianMixture(np.ones(1), dist.mean[None, :], dist.L[None, :, :])
    if not isinstance(dist, GaussianMixture):
        raise TypeError(
            f"{name} must be a Gaussian, DiagGaussian or GaussianMixture; "
            f"got {type(dist).__name__}"
        )
    keep = dist.weights > 0
    if dist.covariance_type == "full":
        L = dist.L
    else:
        L = np.linalg.cholesky(dist.dense_covariances())
    return GaussianMixture(dist.weights[keep], dist.means[keep], L[keep])


def _check_pair(p, q):
    f, g = _as_mixture(p, "p"), _as_mixture(q, "q")
    if f.dim != g.dim:
        raise ValueError(
            f"q must have the dimension of p; got q of dimension {g.dim}, p of {f.dim}"
        )
    return f, g


def _components(f):
    """The components of a full mixture as ``Gaussian`` objects."""
    return [Gaussian(m, L) for m, L in zip(f.means, f.L, strict=True)]


def _log_ratio(f, g):
    """x (m, d) -> log f(x) - log g(x), (m,); log densities by logsumexp (MK.2)."""

    def log_ratio(x):
        return mixture.log_marginal(f, x) - mixture.log_marginal(g, x)

    return log_ratio


def _pairwise_kl(f, g):
    """D(f_a || g_b), shape (A, B); (MK.3)."""
    return np.array(
        [[gaussian.kl(fa, gb) for gb in _components(g)] for fa in _components(f)]
    )


def _entropies(f):
    """H(f_a), shape (A,); (MK.3)."""
    return np.array([gaussian.entropy(fa) for fa in _components(f)])


def _log_overlap(f, g):
    """log t_ab = log N(mu_a; nu_b, Sigma_a + Lambda_b), shape (A, B); (MK.5)."""
    Sigma_f, Sigma_g = f.dense_covariances(), g.dense_covariances()
    out = np.empty((f.n_components, g.n_components))
    for a in range(f.n_components):
        for b in range(g.n_components):
            L_sum = cholesky_of_spd(Sigma_f[a] + Sigma_g[b], "Sigma_a + Sigma_b")
            out[a, b] = _log_prob_chol(f.means[a][None, :], g.means[b], L_sum)[0]
    return out


def _log_sum_weighted(weights, log_terms):
    """log sum_b weights_b exp(log_terms[a, b]) for each row a, (A,)."""
    return logsumexp(np.log(weights)[None, :] + log_terms, axis=1)


# ---------------------------------------------------------------------------
# Numerical routes.


def kl_quadrature(p, q, order=None):
    """KL(p || q) by Gauss-Hermite quadrature under each component of p; (MK.6).

    KL = sum_a pi_a E_{p_a}[log p(x) - log q(x)], each expectation by the
    tensor Gauss-Hermite rule of ``refvi.verify.quadrature.expect_gaussian``;
    the error is sum_a pi_a err_a, err_a the component's refinement estimate.
    Exact to rounding when p and q are single Gaussians (quadratic integrand).

    Parameters
    ----------
    p, q : Gaussian, DiagGaussian or GaussianMixture of equal dimension d <= 3
    order : int, optional
        Nodes per coordinate (default: ``refvi.verify.quadrature.DEFAULT_ORDER``).

    Returns
    -------
    QuadResult
    """
    f, g = _check_pair(p, q)
    if f.dim > MAX_QUADRATURE_DIM:
        raise ValueError(
            f"p must have dimension <= {MAX_QUADRATURE_DIM} for quadrature "
            f"(order^d nodes per component); got {f.dim} - use kl_montecarlo"
        )
    h = _log_ratio(f, g)
    value, error = 0.0, 0.0
    for pi_a, fa in zip(f.weights, _components(f), strict=True):
        # (MK.6)  E_f[h] = sum_a pi_a E_{f_a}[h]
        res = expect_gaussian(h, fa.mean, fa.L, order=order)
        value += pi_a * res.value
        error += pi_a * res.error
    return QuadResult(float(value), float(error))


def _sample(f, rng, n):
    """n ancestral draws from a full mixture: a ~ Cat(pi), x = mu_a + L_a eps (MK.7)."""
    a = rng.choice(f.n_components, size=n, p=f.weights)
    eps = rng.standard_normal((n, f.dim))
    return f.means[a] + np.einsum("nij,nj->ni", f.L[a], eps)


def kl_montecarlo(p, q, rng, n_samples):
    """KL(p || q) by Monte Carlo over x ~ p, in any dimension; (MK.7).

    Parameters
    ----------
    p, q : Gaussian, DiagGaussian or GaussianMixture of equal dimension
    rng : numpy.random.Generator
    n_samples : int >= 2

    Returns
    -------
    MCEstimate
        Mean of log p(x_s) - log q(x_s) and its standard error.
    """
    f, g = _check_pair(p, q)
    rng = check_rng(rng)
    n_samples = check_int(n_samples, "n_samples", minimum=2)
    return mc_mean(_log_ratio(f, g)(_sample(f, rng, n_samples)))


# ---------------------------------------------------------------------------
# Approximation and bounds from the component pairs.


def kl_variational(p, q):
    """Hershey-Olsen variational approximation D_var(p || q); (MK.10).

    D_var = sum_a pi_a log(sum_a' pi_a' exp(-D(p_a||p_a'))
                         / sum_b w_b exp(-D(p_a||q_b))).

    Not a bound (it is the difference of two lower bounds and can be
    negative); exact when p and q are single Gaussians, zero when p = q.
    """
    f, g = _check_pair(p, q)
    num = _log_sum_weighted(f.weights, -_pairwise_kl(f, f))
    den = _log_sum_weighted(g.weights, -_pairwise_kl(f, g))
    return float(f.weights @ (num - den))


def kl_bounds(p, q):
    """Durrieu-Thiran-Kelly lower and upper bounds on KL(p || q); (MK.11)-(MK.12).

    lower = sum_a pi_a [log sum_a' pi_a' e^{-D(p_a||p_a')} - H(p_a)
                        - log sum_b w_b t_ab]
    upper = sum_a pi_a [log sum_a' pi_a' z_aa' + H(p_a)
                        - log sum_b w_b e^{-D(p_a||q_b)}]

    with t_ab = N(mu_a; nu_b, Sigma_a + Lambda_b), z_aa' likewise within p.
    Both are true bounds (Jensen in each direction, (MK.8)-(MK.9)).

    Returns
    -------
    KLBounds(lower, upper)
    """
    f, g = _check_pair(p, q)
    H = _entropies(f)
    # (MK.8)  lower bounds on E_{p_a} log p and E_{p_a} log q (minus -H(p_a))
    var_ff = _log_sum_weighted(f.weights, -_pairwise_kl(f, f))
    var_fg = _log_sum_weighted(g.weights, -_pairwise_kl(f, g))
    # (MK.9)  upper bounds on E_{p_a} log p and E_{p_a} log q
    jensen_ff = _log_sum_weighted(f.weights, _log_overlap(f, f))
    jensen_fg = _log_sum_weighted(g.weights, _log_overlap(f, g))
    lower = f.weights @ (var_ff - H - jensen_fg)  # (MK.11)
    upper = f.weights @ (jensen_ff + H - var_fg)  # (MK.12)
    return KLBounds(float(lower), float(upper))


def kl_variational_upper_bound(p, q, n_iter=DEFAULT_N_ITER):
    """Hershey-Olsen variational upper bound D_varUB(p || q); (MK.13)-(MK.14).

    D(p||q) <= sum_ab phi_ab [log(phi_ab / psi_ab) + D(p_a||q_b)] for every
    phi, psi with row sums pi and column sums w. Starting from
    phi = psi = pi w^T (the convexity bound), ``n_iter`` alternating exact
    minimisations (MK.14) decrease it monotonically; every iterate is a true
    upper bound. Computed in log space.

    Parameters
    ----------
    p, q : Gaussian, DiagGaussian or GaussianMixture of equal dimension
    n_iter : int >= 0

    Returns
    -------
    float
    """
    f, g = _check_pair(p, q)
    n_iter = check_int(n_iter, "n_iter", minimum=0)
    D = _pairwise_kl(f, g)
    log_pi, log_w = np.log(f.weights), np.log(g.weights)
    log_phi = log_pi[:, None] + log_w[None, :]
    log_psi = log_phi
    for _ in range(n_iter):
        # (MK.14)  psi_ab = w_b phi_ab / sum_a' phi_a'b
        log_psi = log_w[None, :] + log_phi - logsumexp(log_phi, axis=0, keepdims=True)
        # (MK.14)  phi_ab = pi_a psi_ab e^{-D_ab} / sum_b' psi_ab' e^{-D_ab'}
        t = log_psi - D
        log_phi = log_pi[:, None] + t - logsumexp(t, axis=1, keepdims=True)
    # (MK.13)  sum_ab phi_ab [log phi_ab - log psi_ab + D_ab]
    return float(np.sum(np.exp(log_phi) * (log_phi - log_psi + D)))
