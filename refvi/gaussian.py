"""Multivariate normal N(mean, L L^T) in Cholesky form, with handwritten gradients.

Two parameterisations share one set of functions:

- ``Gaussian(mean, L)``: ``L`` lower triangular with a positive diagonal,
  covariance ``Sigma = L L^T``;
- ``DiagGaussian(mean, log_std)``: ``Sigma = diag(exp(2 log_std))``.

Every value ``f`` has ``f_and_grad`` beside it returning ``(value, grads)``
with ``grads`` a dict keyed by parameter name. A gradient w.r.t. ``L`` is
lower triangular: the derivative w.r.t. each free entry of the factor.
The formulas and their gradients are derived in ``derivations/gaussian_kl.md``;
docstrings cite its equation labels (G.n).

The private kernels ``_whiten``, ``_logdet_chol``, ``_log_prob_whitened``,
``_log_prob_chol``, ``_mahalanobis_chol`` and ``_kl_chol`` do no argument
checking. They are the one implementation of the Gaussian density and KL in
refvi: models that need a Gaussian log-density factorise their covariance and
call these instead of writing the density again.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import solve_triangular

from refvi._validate import (
    as_data,
    as_float_array,
    check_dout,
    check_int,
    check_lower_cholesky,
    check_rng,
    cholesky_of_spd,
    read_only_copy,
)

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True, eq=False)
class Gaussian:
    """Multivariate normal N(mean, L L^T).

    Parameters
    ----------
    mean : array_like, shape (d,)
        The mean.
    L : array_like, shape (d, d)
        Lower Cholesky factor of the covariance: lower triangular (entries
        above the diagonal exactly zero), positive diagonal.

    Both are stored as read-only float64 copies; float32 and integer input is
    promoted. Invalid input raises ValueError naming the argument.
    """

    mean: np.ndarray
    L: np.ndarray

    def __post_init__(self):
        mean = as_float_array(self.mean, "mean", ndim=1)
        L = check_lower_cholesky(self.L, "L", d=mean.shape[0])
        object.__setattr__(self, "mean", read_only_copy(mean))
        object.__setattr__(self, "L", read_only_copy(L))

    @property
    def d(self):
        """Dimension."""
        return self.mean.shape[0]

    @property
    def cov(self):
        """Covariance Sigma = L L^T, shape (d, d)."""
        return self.L @ self.L.T

    @classmethod
    def from_cov(cls, mean, Sigma):
        """N(mean, Sigma) from a symmetric positive definite covariance ``Sigma``.

        Raises ValueError naming ``Sigma`` if it is not symmetric positive
        definite (``refvi._validate.cholesky_of_spd``).
        """
        mean = as_float_array(mean, "mean", ndim=1)
        return cls(mean, cholesky_of_spd(Sigma, "Sigma", d=mean.shape[0]))


@dataclass(frozen=True, eq=False)
class DiagGaussian:
    """Multivariate normal N(mean, diag(exp(2 log_std))).

    Parameters
    ----------
    mean : array_like, shape (d,)
        The mean.
    log_std : array_like, shape (d,)
        Log standard deviations; the variances exp(2 log_std) must be finite
        and positive in float64.

    Both are stored as read-only float64 copies.
    """

    mean: np.ndarray
    log_std: np.ndarray

    def __post_init__(self):
        mean = as_float_array(self.mean, "mean", ndim=1)
        log_std = as_float_array(self.log_std, "log_std", shape=(mean.shape[0],))
        with np.errstate(over="ignore", under="ignore"):
            var = np.exp(2.0 * log_std)
        if not np.all(np.isfinite(var) & (var > 0)):
            raise ValueError(
                "log_std must give a finite positive variance exp(2 log_std); "
                f"got log_std in [{log_std.min():.3g}, {log_std.max():.3g}]"
            )
        object.__setattr__(self, "mean", read_only_copy(mean))
        object.__setattr__(self, "log_std", read_only_copy(log_std))

    @property
    def d(self):
        """Dimension."""
        return self.mean.shape[0]

    @property
    def std(self):
        """Standard deviations exp(log_std), shape (d,)."""
        return np.exp(self.log_std)

    @property
    def L(self):
        """Cholesky factor diag(exp(log_std)), shape (d, d)."""
        return np.diag(self.std)

    @property
    def cov(self):
        """Covariance diag(exp(2 log_std)), shape (d, d)."""
        return np.diag(np.exp(2.0 * self.log_std))

    def to_full(self):
        """The same distribution as a ``Gaussian`` with L = diag(exp(log_std))."""
        return Gaussian(self.mean, self.L)


def standard_normal(d):
    """The standard normal N(0, I_d) as a ``Gaussian``."""
    d = check_int(d, "d", minimum=1)
    return Gaussian(np.zeros(d), np.eye(d))


# ---------------------------------------------------------------------------
# Private kernels: no argument checking.


def _whiten(x, mean, L):
    """z_i = L^{-1} (x_i - mean) for each row of ``x`` (n, d); (G.2)."""
    return solve_triangular(L, (x - mean).T, lower=True).T


def _logdet_chol(L):
    """log det(L L^T) = 2 sum_j log L_jj; (G.3)."""
    return 2.0 * np.sum(np.log(np.diag(L)))


def _mahalanobis_chol(x, mean, L):
    """(x_i - mean)^T Sigma^{-1} (x_i - mean) = |z_i|^2 for each row, (n,); (G.2)."""
    z = _whiten(x, mean, L)
    return np.einsum("ij,ij->i", z, z)


def _log_prob_whitened(z, logdet_Sigma):
    """log N from whitened residuals z (n, d) and log det Sigma; (G.1)."""
    d = z.shape[1]
    return -0.5 * (d * LOG_2PI + logdet_Sigma + np.einsum("ij,ij->i", z, z))


def _log_prob_chol(x, mean, L):
    """log N(x_i | mean, L L^T) for each row of ``x`` (n, d), (n,); (G.1)."""
    return _log_prob_whitened(_whiten(x, mean, L), _logdet_chol(L))


class _KLCache(NamedTuple):
    M: np.ndarray  # L_q^{-1} L_p, lower triangular (d, d)
    delta: np.ndarray  # L_q^{-1} (mean_p - mean_q), (d,)


def _kl_chol_forward(mean_p, L_p, mean_q, L_q):
    """KL(N(mean_p, L_p L_p^T) || N(mean_q, L_q L_q^T)) and its cache; (G.6)."""
    # (G.6)  KL = 1/2 (|M|_F^2 + |delta|^2 - d) + sum log diag L_q - sum log diag L_p
    M = solve_triangular(L_q, L_p, lower=True)
    delta = solve_triangular(L_q, mean_p - mean_q, lower=True)
    d = mean_p.shape[0]
    value = 0.5 * (np.sum(M * M) + delta @ delta - d)
    value += 0.5 * (_logdet_chol(L_q) - _logdet_chol(L_p))
    return float(value), _KLCache(M, delta)


def _kl_chol(mean_p, L_p, mean_q, L_q):
    """KL(N(mean_p, L_p L_p^T) || N(mean_q, L_q L_q^T)); (G.6)."""
    return _kl_chol_forward(mean_p, L_p, mean_q, L_q)[0]


# ---------------------------------------------------------------------------
# Argument checks shared by the public functions.


def _check_dist(p, name="p"):
    if not isinstance(p, (Gaussian, DiagGaussian)):
        raise TypeError(
            f"{name} must be a Gaussian or DiagGaussian; got {type(p).__name__}"
        )
    return p


def _check_pair(p, q):
    _check_dist(p, "p")
    _check_dist(q, "q")
    if type(p) is not type(q):
        raise TypeError(
            "p and q must be the same family; got "
            f"{type(p).__name__} and {type(q).__name__} (use DiagGaussian.to_full())"
        )
    if p.d != q.d:
        raise ValueError(
            f"q must have the dimension of p; got q.d = {q.d}, p.d = {p.d}"
        )


# ---------------------------------------------------------------------------
# Density.


def log_prob(p, x):
    """log p(x_i) for each row of ``x``.

    log N(x | mean, Sigma) = -1/2 (d log 2 pi + log det Sigma + |L^{-1}(x - mean)|^2),
    derivations/gaussian_kl.md (G.1)-(G.3).

    Parameters
    ----------
    p : Gaussian or DiagGaussian
    x : array_like, shape (n, d)

    Returns
    -------
    ndarray, shape (n,)
    """
    return log_prob_and_grad(p, x)[0]


def log_prob_and_grad(p, x, dout=None):
    """log p(x_i) and the gradients of sum_i dout_i log p(x_i).

    Implements derivations/gaussian_kl.md (G.1) and its gradients (G.10)-(G.12)
    (full) and (G.13)-(G.14) (diagonal).

    Parameters
    ----------
    p : Gaussian or DiagGaussian
    x : array_like, shape (n, d)
    dout : array_like, shape (n,), optional
        Upstream gradient (default ones).

    Returns
    -------
    value : ndarray, shape (n,)
    grads : dict
        ``{"x": (n, d), "mean": (d,), "L": (d, d) lower}`` for a Gaussian,
        ``{"x": (n, d), "mean": (d,), "log_std": (d,)}`` for a DiagGaussian.
    """
    _check_dist(p)
    x = as_data(x, p.d)
    dout = check_dout(dout, x.shape[0])
    if isinstance(p, DiagGaussian):
        inv_std = np.exp(-p.log_std)
        z = (x - p.mean) * inv_std
        value = _log_prob_whitened(z, 2.0 * np.sum(p.log_std))
        # (G.13)  d/dx = -Sigma^{-1}(x - mean) = -z / std,  d/dmean = +z / std
        a = dout[:, None] * z * inv_std
        # (G.14)  d/dlog_std_j = z_j^2 - 1
        dlog_std = dout @ (z * z) - dout.sum()
        return value, {"x": -a, "mean": a.sum(axis=0), "log_std": dlog_std}
    z = _whiten(x, p.mean, p.L)
    value = _log_prob_whitened(z, _logdet_chol(p.L))
    # (G.10)  a = Sigma^{-1}(x - mean) = L^{-T} z;  d/dx = -a,  d/dmean = +a
    a = solve_triangular(p.L, z.T, lower=True, trans="T").T
    a *= dout[:, None]
    # (G.12)  d/dL = tril(sum_i dout_i a_i z_i^T) - (sum_i dout_i) diag(1 / L_jj)
    dL = np.tril(a.T @ z) - dout.sum() * np.diag(1.0 / np.diag(p.L))
    return value, {"x": -a, "mean": a.sum(axis=0), "L": dL}


# ---------------------------------------------------------------------------
# Sampling.


def reparameterize(p, eps):
    """x_i = mean + L eps_i for each row of ``eps`` (n, d); (G.4).

    For a DiagGaussian, L = diag(exp(log_std)).
    """
    return reparameterize_and_grad(p, eps)[0]


def reparameterize_and_grad(p, eps, dout=None):
    """x = mean + eps L^T and the gradients of sum_ij dout_ij x_ij; (G.4)-(G.5).

    Parameters
    ----------
    p : Gaussian or DiagGaussian
    eps : array_like, shape (n, d)
        Standard normal noise.
    dout : array_like, shape (n, d), optional
        Upstream gradient w.r.t. the samples (default ones).

    Returns
    -------
    value : ndarray, shape (n, d)
    grads : dict
        ``{"eps": (n, d), "mean": (d,), "L": (d, d) lower}`` for a Gaussian,
        ``{"eps": (n, d), "mean": (d,), "log_std": (d,)}`` for a DiagGaussian.
    """
    _check_dist(p)
    eps = as_data(eps, p.d, name="eps")
    if dout is None:
        dout = np.ones(eps.shape)
    else:
        dout = as_float_array(dout, "dout", shape=eps.shape)
    dmean = dout.sum(axis=0)
    if isinstance(p, DiagGaussian):
        std = p.std
        value = p.mean + eps * std
        # (G.5)  d/deps = dout std,  d/dlog_std_j = sum_i dout_ij eps_ij std_j
        dlog_std = np.sum(dout * eps, axis=0) * std
        return value, {"eps": dout * std, "mean": dmean, "log_std": dlog_std}
    value = p.mean + eps @ p.L.T
    # (G.5)  d/deps = dout L,  d/dL = tril(dout^T eps)
    return value, {"eps": dout @ p.L, "mean": dmean, "L": np.tril(dout.T @ eps)}


def sample(p, rng, n):
    """``n`` draws from ``p``, shape (n, d): reparameterize(p, rng.standard_normal)."""
    _check_dist(p)
    rng = check_rng(rng)
    n = check_int(n, "n", minimum=1)
    return reparameterize(p, rng.standard_normal((n, p.d)))


# ---------------------------------------------------------------------------
# Entropy and KL.


def entropy(p):
    """Differential entropy H[p] = d/2 (1 + log 2 pi) + 1/2 log det Sigma; (G.7)."""
    return entropy_and_grad(p)[0]


def entropy_and_grad(p):
    """H[p] (G.7) and its gradients (G.15).

    Returns
    -------
    value : float
    grads : dict
        ``{"mean": zeros (d,), "L": diag(1 / L_jj)}`` for a Gaussian,
        ``{"mean": zeros (d,), "log_std": ones (d,)}`` for a DiagGaussian.
    """
    _check_dist(p)
    dmean = np.zeros(p.d)
    if isinstance(p, DiagGaussian):
        # (G.7)  H = d/2 (1 + log 2 pi) + sum_j log_std_j
        value = 0.5 * p.d * (1.0 + LOG_2PI) + np.sum(p.log_std)
        return float(value), {"mean": dmean, "log_std": np.ones(p.d)}
    value = 0.5 * p.d * (1.0 + LOG_2PI) + 0.5 * _logdet_chol(p.L)
    # (G.15)  dH/dL = diag(1 / L_jj)
    return float(value), {"mean": dmean, "L": np.diag(1.0 / np.diag(p.L))}


def kl(p, q):
    """KL(p || q) between two Gaussians of the same family and dimension; (G.6)."""
    return kl_and_grad(p, q)[0]


def kl_and_grad(p, q):
    """KL(p || q) and its gradients w.r.t. both arguments.

    Full: (G.6) with gradients (G.16)-(G.18). Diagonal: (G.8) with gradients
    (G.19)-(G.20).

    Returns
    -------
    value : float
    grads : dict
        ``{"mean_p", "L_p", "mean_q", "L_q"}`` (L gradients lower triangular),
        or ``{"mean_p", "log_std_p", "mean_q", "log_std_q"}`` for DiagGaussians.

    Raises
    ------
    TypeError
        If p and q are not both Gaussian or both DiagGaussian.
    ValueError
        If their dimensions differ.
    """
    _check_pair(p, q)
    if isinstance(p, DiagGaussian):
        # (G.8)  r = sigma_p^2 / sigma_q^2,  u = (mean_p - mean_q) / sigma_q
        #        KL = 1/2 sum_j (r_j + u_j^2 - 1 - log r_j)
        log_r = 2.0 * (p.log_std - q.log_std)
        r = np.exp(log_r)
        inv_std_q = np.exp(-q.log_std)
        u = (p.mean - q.mean) * inv_std_q
        value = 0.5 * np.sum(r + u * u - 1.0 - log_r)
        # (G.19)  d/dmean_p = u / sigma_q = -d/dmean_q
        dmean_p = u * inv_std_q
        # (G.20)  d/dlog_std_p = r - 1,  d/dlog_std_q = 1 - r - u^2
        return float(value), {
            "mean_p": dmean_p,
            "log_std_p": r - 1.0,
            "mean_q": -dmean_p,
            "log_std_q": 1.0 - r - u * u,
        }
    value, (M, delta) = _kl_chol_forward(p.mean, p.L, q.mean, q.L)
    # (G.16)  d/dmean_p = L_q^{-T} delta = Sigma_q^{-1}(mean_p - mean_q) = -d/dmean_q
    dmean_p = solve_triangular(q.L, delta, lower=True, trans="T")
    # (G.17)  d/dL_p = tril(L_q^{-T} M) - diag(1 / L_p,jj)
    dL_p = np.tril(solve_triangular(q.L, M, lower=True, trans="T"))
    dL_p -= np.diag(1.0 / np.diag(p.L))
    # (G.18)  d/dL_q = -tril(L_q^{-T} (M M^T + delta delta^T)) + diag(1 / L_q,jj)
    B = M @ M.T + np.outer(delta, delta)
    dL_q = -np.tril(solve_triangular(q.L, B, lower=True, trans="T"))
    dL_q += np.diag(1.0 / np.diag(q.L))
    return value, {"mean_p": dmean_p, "L_p": dL_p, "mean_q": -dmean_p, "L_q": dL_q}


def kl_standard_normal(p):
    """KL(p || N(0, I)) in closed form; (G.9), Kingma & Welling (2014) App. B."""
    return kl_standard_normal_and_grad(p)[0]


def kl_standard_normal_and_grad(p):
    """KL(p || N(0, I)) (G.9) and its gradients (G.21)-(G.22).

    Full: KL = 1/2 (|L|_F^2 + |mean|^2 - d) - sum_j log L_jj.
    Diagonal (Kingma-Welling):
    KL = 1/2 sum_j (mean_j^2 + sigma_j^2 - 1 - 2 log sigma_j).

    Returns
    -------
    value : float
    grads : dict
        ``{"mean", "L"}`` (L gradient lower triangular) or ``{"mean", "log_std"}``.
    """
    _check_dist(p)
    mean = p.mean
    if isinstance(p, DiagGaussian):
        var = np.exp(2.0 * p.log_std)
        value = 0.5 * np.sum(mean * mean + var - 1.0 - 2.0 * p.log_std)
        # (G.22)  d/dmean = mean,  d/dlog_std = sigma^2 - 1
        return float(value), {"mean": mean.copy(), "log_std": var - 1.0}
    L = p.L
    value = 0.5 * (np.sum(L * L) + mean @ mean - p.d) - 0.5 * _logdet_chol(L)
    # (G.21)  d/dmean = mean,  d/dL = L - diag(1 / L_jj)
    return float(value), {"mean": mean.copy(), "L": L - np.diag(1.0 / np.diag(L))}
