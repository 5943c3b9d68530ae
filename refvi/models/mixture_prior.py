"""Linear-Gaussian model with a Gaussian-mixture prior.

    z ~ sum_j pi_j N(a_j, B_j),    x | z ~ N(W z + mu, Psi),    Psi = diag(psi).

The marginal p(x) and the posterior p(z | x) are Gaussian mixtures in closed
form; for a Gaussian q the ELBO and KL(q || p(z | x)) are not, and are computed
by Gauss-Hermite quadrature under q (with an error estimate) or by Monte Carlo
(with a standard error). Every formula is derived in
``derivations/mixture_prior.md``; docstrings cite its labels (MP.n).

Mixture densities are evaluated by :mod:`refvi.models.mixture` (the prior and
the marginal are built as ``GaussianMixture`` objects), the likelihood by
:func:`refvi.models.linear_gaussian.log_lik`, so no density is written twice.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

from refvi import gaussian
from refvi._validate import (
    as_data,
    as_datum,
    as_float_array,
    as_latent,
    check_instance,
    check_int,
    check_lower_cholesky,
    check_rng,
    check_weights,
    cholesky_of_spd,
    read_only_copy,
)
from refvi.gaussian import _log_prob_chol, _log_prob_whitened, _logdet_chol
from refvi.models import linear_gaussian, mixture
from refvi.models.linear_gaussian import LinearGaussian
from refvi.models.mixture import GaussianMixture
from refvi.verify.montecarlo import mc_mean
from refvi.verify.quadrature import expect_gaussian

__all__ = [
    "MixturePrior",
    "MixturePosterior",
    "DEFAULT_N_SAMPLES",
    "marginal",
    "log_marginal",
    "posterior",
    "log_prior",
    "log_lik",
    "log_joint",
    "log_posterior",
    "elbo_quadrature",
    "elbo_montecarlo",
    "kl_to_posterior_quadrature",
    "kl_to_posterior_montecarlo",
]

#: Default number of Monte Carlo draws per datum (:func:`elbo_montecarlo`,
#: :func:`kl_to_posterior_montecarlo`).
DEFAULT_N_SAMPLES = 10_000


@dataclass(frozen=True, eq=False)
class MixturePrior:
    """z ~ sum_j pi_j N(a_j, L_B_j L_B_j^T), x | z ~ N(W z + mu, diag(psi)).

    Implements the model (MP.1) of derivations/mixture_prior.md.

    Parameters
    ----------
    weights : array_like, shape (J,)
        Prior mixing weights pi: non-negative, summing to one (within
        ``refvi._validate.WEIGHT_SUM_TOL``).
    a : array_like, shape (J, k)
        Prior component means.
    L_B : array_like, shape (J, k, k)
        Lower Cholesky factors of the prior component covariances B_j.
    W : array_like, shape (d, k)
        Loadings.
    mu : array_like, shape (d,)
        Offset of x.
    psi : array_like, shape (d,)
        Noise variances, all > 0.

    All arrays are stored as read-only float64 copies; invalid input raises
    ValueError naming the argument. ``prior`` (a ``GaussianMixture`` over z)
    and ``likelihood`` (a ``LinearGaussian`` carrying W, mu, psi) are derived
    on construction.
    """

    weights: np.ndarray
    a: np.ndarray
    L_B: np.ndarray
    W: np.ndarray
    mu: np.ndarray
    psi: np.ndarray
    prior: GaussianMixture = field(init=False, repr=False)
    likelihood: LinearGaussian = field(init=False, repr=False)

    def __post_init__(self):
        weights = check_weights(self.weights, "weights")
        J = weights.shape[0]
        a = as_float_array(self.a, "a", ndim=2, shape=(J, None))
        k = a.shape[1]
        L_B = as_float_array(self.L_B, "L_B", shape=(J, k, k))
        for j in range(J):
            check_lower_cholesky(L_B[j], f"L_B[{j}]")
        likelihood = LinearGaussian(self.W, self.mu, self.psi)
        if likelihood.k != k:
            raise ValueError(
                f"W must have k = {k} columns (the latent dimension of a); "
                f"got shape {likelihood.W.shape}"
            )
        object.__setattr__(self, "weights", read_only_copy(weights))
        object.__setattr__(self, "a", read_only_copy(a))
        object.__setattr__(self, "L_B", read_only_copy(L_B))
        object.__setattr__(self, "W", likelihood.W)
        object.__setattr__(self, "mu", likelihood.mu)
        object.__setattr__(self, "psi", likelihood.psi)
        object.__setattr__(self, "prior", GaussianMixture(weights, a, L_B))
        object.__setattr__(self, "likelihood", likelihood)

    @property
    def J(self):
        """Number of prior components."""
        return self.weights.shape[0]

    @property
    def k(self):
        """Latent dimension."""
        return self.a.shape[1]

    @property
    def d(self):
        """Data dimension."""
        return self.W.shape[0]

    @classmethod
    def from_covariances(cls, weights, a, B, W, mu, psi):
        """Build the model from prior covariances ``B`` (J, k, k) instead of factors.

        Each B_j must be symmetric positive definite; otherwise ValueError
        naming ``B[j]`` (``refvi._validate.cholesky_of_spd``).
        """
        k = as_float_array(a, "a", ndim=2).shape[1]
        B = as_float_array(B, "B", shape=(None, k, k))
        L_B = np.stack([cholesky_of_spd(B_j, f"B[{j}]") for j, B_j in enumerate(B)])
        return cls(weights, a, L_B, W, mu, psi)


class MixturePosterior(NamedTuple):
    """Exact posterior p(z | x_i) = sum_j r_ij N(m_ij, S_j); (MP.5)-(MP.9).

    Attributes
    ----------
    log_weights : ndarray, shape (n, J)
        log r_ij = log P(j | x_i), the log responsibilities of the marginal (MP.6).
    m : ndarray, shape (n, J, k)
        Component means m_ij (MP.9).
    L_S : ndarray, shape (J, k, k)
        Lower Cholesky factors of the component covariances S_j (MP.8), shared
        by all data.
    """

    log_weights: np.ndarray
    m: np.ndarray
    L_S: np.ndarray

    def mixture(self, i=0):
        """The posterior of datum ``i`` as a ``GaussianMixture`` over z."""
        i = check_int(i, "i", minimum=0)
        n = self.log_weights.shape[0]
        if i >= n:
            raise ValueError(f"i must be < n = {n} (the number of data); got {i}")
        return GaussianMixture(
            None, self.m[i], self.L_S, log_weights=self.log_weights[i]
        )


# ---------------------------------------------------------------------------
# Private kernels: no argument checking.


def _check_model(model):
    return check_instance(model, MixturePrior, "model")


class _PosteriorFactor(NamedTuple):
    Q1: np.ndarray  # top d rows of the orthonormal Q of [V_j; I] = Q R, (J, d, k)
    L_G: np.ndarray  # R_j^T: lower factor of G_j = I + V_j^T V_j = L_G L_G^T, (J, k, k)
    L_S: np.ndarray  # lower Cholesky factor of S_j, (J, k, k)


def _posterior_factor(model):
    """The x-independent part of the posterior, (MP.8).

    G_j = I + V_j^T V_j is never formed: the Householder QR of the stacked
    (d + k, k) matrix [V_j; I] = Q_j R_j gives G_j = R_j^T R_j, a factor as
    accurate as V_j itself. (A Cholesky factor of the formed G_j carries the
    rounding of its entries of size 1/psi: errors of 1e-6 in L_S and m at
    psi = 1e-10.)
    """
    k = model.k
    # (MP.8)  V_j = Psi^{-1/2} W L_B_j,  [V_j; I] = Q_j R_j,  G_j = R_j^T R_j
    V = (model.W @ model.L_B) / np.sqrt(model.psi)[:, None]
    J, d = V.shape[0], V.shape[1]
    Q, R = np.linalg.qr(np.concatenate([V, np.broadcast_to(np.eye(k), (J, k, k))], 1))
    sign = np.sign(np.diagonal(R, axis1=1, axis2=2))
    L_G = np.swapaxes(R, 1, 2) * sign[:, None, :]  # positive diagonal
    Q1 = Q[:, :d, :] * sign[:, None, :]
    # (MP.8)  S_j = A_j^T A_j,  A_j = L_G^{-1} L_B^T;
    #         A_j = Q R  =>  L_S = R^T diag(sign R_ii)
    A = solve_triangular(L_G, np.swapaxes(model.L_B, 1, 2), lower=True)
    R = np.linalg.qr(A, mode="r")
    sign = np.sign(np.diagonal(R, axis1=1, axis2=2))
    L_S = np.swapaxes(R, 1, 2) * sign[:, None, :]
    return _PosteriorFactor(Q1, L_G, L_S)


def _posterior_means(model, factor, x):
    """m_ij (n, J, k) for data x (n, d), (MP.9).

    G_j^{-1} V_j^T w is the least-squares solution of [V_j; I] y = [w; 0],
    taken from the QR as y = R_j^{-1} Q1_j^T w (backward stable), not from the
    normal equations G_j y = V_j^T w.
    """
    # (MP.9)  m_j = a_j + L_B_j G_j^{-1} V_j^T Psi^{-1/2} (x - mu - W a_j)
    resid = (x - model.mu)[:, None, :] - model.a @ model.W.T  # (n, J, d)
    u = np.einsum("jdk,njd->jkn", factor.Q1, resid / np.sqrt(model.psi))
    # R_j y = Q1_j^T w with R_j = L_G^T
    y = solve_triangular(factor.L_G, u, lower=True, trans="T")  # (J, k, n)
    return model.a + np.einsum("jkl,jln->njk", model.L_B, y)


def _log_prior(model, z):
    return mixture.log_marginal(model.prior, z)


def _log_joint(model, x, z):
    return _log_prior(model, z) + linear_gaussian.log_lik(model.likelihood, x, z)


# ---------------------------------------------------------------------------
# Marginal and posterior.


def marginal(model):
    """The marginal p(x) as a ``GaussianMixture``; (MP.3)-(MP.4).

    Components N(W a_j + mu, C_j) with C_j = W B_j W^T + Psi. Each C_j is
    assembled densely as M_j M_j^T + diag(psi) with M_j = W L_B_j (B_j is
    never formed) and factored by Cholesky (MP.4): O(J (d^2 k + d^3)).
    """
    _check_model(model)
    M = model.W @ model.L_B  # (J, d, k)
    C = M @ np.swapaxes(M, 1, 2) + np.diag(model.psi)
    L_C = np.stack([cholesky_of_spd(C_j, f"C[{j}]") for j, C_j in enumerate(C)])
    return GaussianMixture(model.weights, model.a @ model.W.T + model.mu, L_C)


def log_marginal(model, x):
    """log p(x_i) = logsumexp_j [log pi_j + log N(x_i; W a_j + mu, C_j)]; (MP.3).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    ``x`` (n, d) -> (n,), through ``refvi.models.mixture.log_marginal`` of
    :func:`marginal`.
    """
    _check_model(model)
    x = as_data(x, model.d)
    return mixture.log_marginal(marginal(model), x)


def posterior(model, x):
    """Exact posterior p(z | x_i) for each row of ``x`` (n, d); (MP.5)-(MP.9).

    p(z | x) = sum_j P(j | x) N(z; m_j, S_j) with P(j | x) the responsibilities
    of the marginal mixture (MP.6), S_j = (B_j^{-1} + W^T Psi^{-1} W)^{-1}
    (MP.7) factored without an inverse (MP.8), and
    m_j = a_j + L_B_j G_j^{-1} V_j^T Psi^{-1/2} (x - mu - W a_j) (MP.9).

    Returns
    -------
    MixturePosterior
        ``log_weights`` (n, J), ``m`` (n, J, k), ``L_S`` (J, k, k);
        ``.mixture(i)`` gives datum i's posterior as a ``GaussianMixture``.
    """
    _check_model(model)
    x = as_data(x, model.d)
    factor = _posterior_factor(model)
    log_r = mixture.log_responsibilities(marginal(model), x)
    return MixturePosterior(log_r, _posterior_means(model, factor, x), factor.L_S)


# ---------------------------------------------------------------------------
# Densities for one datum x (d,) at latent points z (m, k); (MP.2).


def log_prior(model, z):
    """log p(z_i) = logsumexp_j [log pi_j + log N(z_i; a_j, B_j)] -> (m,); (MP.2)."""
    _check_model(model)
    return _log_prior(model, as_latent(z, model.k))


def log_lik(model, x, z):
    """log p(x | z_i) = log N(x; W z_i + mu, diag(psi)) -> (m,); (MP.1).

    ``x`` (d,) is one datum; ``z`` (m, k) latent points.
    """
    _check_model(model)
    return linear_gaussian.log_lik(model.likelihood, x, z)


def log_joint(model, x, z):
    """log p(x, z_i) = log p(z_i) + log p(x | z_i) -> (m,); (MP.2)."""
    _check_model(model)
    x = as_datum(x, model.d)
    return _log_joint(model, x, as_latent(z, model.k))


def log_posterior(model, x, z):
    """log p(z_i | x) from the closed-form posterior mixture -> (m,); (MP.5)-(MP.9).

    Evaluated as the density of the mixture ``posterior(model, x).mixture(0)``,
    not as log p(x, z) - log p(x), so that identity is a real check.
    """
    _check_model(model)
    x = as_datum(x, model.d)
    z = as_latent(z, model.k)
    return mixture.log_marginal(posterior(model, x[None, :]).mixture(0), z)


# ---------------------------------------------------------------------------
# ELBO and KL to the posterior for Gaussian q_i: quadrature or Monte Carlo.


def _check_q(model, q, n):
    """Mean (n, k) and Cholesky factor (n, k, k) of q_i, one per datum.

    ``q`` is one Gaussian over z (used for every datum) or a batch of n, full
    or diagonal (a diagonal q in its full form, L = diag(exp(log_std))).
    """
    if not isinstance(q, gaussian.Gaussian):
        raise TypeError(f"q must be a Gaussian; got {type(q).__name__}")
    if q.d != model.k:
        raise ValueError(
            f"q must have the latent dimension k = {model.k}; got q.d = {q.d}"
        )
    if q.batch_shape not in ((), (n,)):
        raise ValueError(
            f"q must be one Gaussian or a batch of n = {n} (one per datum); "
            f"got batch shape {q.batch_shape}"
        )
    full = q.to_full()
    k = model.k
    return (
        np.broadcast_to(full.mean, (n, k)),
        np.broadcast_to(full.scale_tril, (n, k, k)),
    )


def _log_q_and_z(mean, L, eps):
    """z = mean_i + L_i eps and log q_i(z) = log N(eps; 0, I) - log det L_i; (G.4)."""
    z = mean + np.einsum("nij,...nj->...ni", L, eps)
    return _log_prob_whitened(eps, _logdet_chol(L)), z


def _log_joint_at(model, x, z):
    """log p(x_i, z_si) for x (n, d) and z (s, n, k) -> (s, n); (MP.2)."""
    log_prior = mixture.log_marginal(model.prior, z.reshape(-1, model.k))
    log_lik = linear_gaussian._log_lik(model.likelihood, x, z)
    return log_prior.reshape(z.shape[:-1]) + log_lik


def _log_posterior_at(post, z):
    """log p(z_si | x_i) for z (s, n, k) from the posterior mixtures -> (s, n).

    logsumexp_j [log r_ij + log N(z; m_ij, S_j)] (MP.5), all j at once.
    """
    log_N = _log_prob_chol(z[..., None, :], post.m, post.L_S)  # (s, n, J)
    return logsumexp(post.log_weights + log_N, axis=-1)


def _elbo_integrand(model, x, mean, L):
    def h(eps):
        # (MP.10)  log p(x_i, z) - log q_i(z),  z = mean_i + L_i eps
        log_q, z = _log_q_and_z(mean, L, eps)
        return _log_joint_at(model, x, z) - log_q

    return h


def _kl_integrand(model, x, mean, L):
    post = posterior(model, x)

    def h(eps):
        # (MP.11)  log q_i(z) - log p(z | x_i)
        log_q, z = _log_q_and_z(mean, L, eps)
        return log_q - _log_posterior_at(post, z)

    return h


def _quadrature(h, k, order):
    """E_{eps ~ N(0, I)} h(eps) per datum by Gauss-Hermite; (MP.12)."""
    return expect_gaussian(
        lambda u: h(u[:, None, :]), np.zeros(k), np.eye(k), order=order
    )


def _montecarlo(h, k, n, rng, n_samples):
    """E_{eps ~ N(0, I)} h(eps) per datum from independent draws; (MP.13)."""
    rng = check_rng(rng)
    n_samples = check_int(n_samples, "n_samples", minimum=2)
    return mc_mean(h(rng.standard_normal((n_samples, n, k))))


def elbo_quadrature(model, x, q, *, order=None):
    """ELBO(q_i) = E_{q_i}[log p(x_i, z) - log q_i(z)] per datum by quadrature.

    No closed form (log p(z) is the log of a sum): the Gauss-Hermite rule under
    each q_i (MP.10), (MP.12), vectorised over the data.

    Parameters
    ----------
    model : MixturePrior
    x : array_like, shape (n, d)
    q : Gaussian over z (dimension k), full or diagonal: one for every datum
        or a batch of shape (n,)
    order : int, optional
        Gauss-Hermite order per dimension (default: the quadrature module's).

    Returns
    -------
    QuadResult
        ``value`` (n,) and ``error`` (n,), the refinement estimate.
    """
    _check_model(model)
    x = as_data(x, model.d)
    mean, L = _check_q(model, q, x.shape[0])
    return _quadrature(_elbo_integrand(model, x, mean, L), model.k, order)


def elbo_montecarlo(model, x, q, rng, n_samples=DEFAULT_N_SAMPLES):
    """ELBO(q_i) per datum by Monte Carlo over z ~ q_i; (MP.10), (MP.13).

    Arguments as in :func:`elbo_quadrature`; ``rng`` a numpy Generator and
    ``n_samples`` >= 2 draws per datum. Returns ``MCEstimate`` with ``mean``
    (n,) and ``se`` (n,).
    """
    _check_model(model)
    x = as_data(x, model.d)
    mean, L = _check_q(model, q, x.shape[0])
    h = _elbo_integrand(model, x, mean, L)
    return _montecarlo(h, model.k, x.shape[0], rng, n_samples)


def kl_to_posterior_quadrature(model, x, q, *, order=None):
    """KL(q_i || p(z | x_i)) = E_{q_i}[log q_i(z) - log p(z | x_i)] per datum.

    By Gauss-Hermite quadrature under each q_i (MP.11), (MP.12); log p(z | x)
    is the closed-form posterior mixture (MP.5)-(MP.9), not
    log p(x, z) - log p(x), so log p(x) = ELBO(q) + KL is a real check.
    Arguments and result as in :func:`elbo_quadrature`.
    """
    _check_model(model)
    x = as_data(x, model.d)
    mean, L = _check_q(model, q, x.shape[0])
    return _quadrature(_kl_integrand(model, x, mean, L), model.k, order)


def kl_to_posterior_montecarlo(model, x, q, rng, n_samples=DEFAULT_N_SAMPLES):
    """KL(q_i || p(z | x_i)) per datum by Monte Carlo over z ~ q_i; (MP.13).

    Arguments and result as in :func:`elbo_montecarlo`.
    """
    _check_model(model)
    x = as_data(x, model.d)
    mean, L = _check_q(model, q, x.shape[0])
    h = _kl_integrand(model, x, mean, L)
    return _montecarlo(h, model.k, x.shape[0], rng, n_samples)
