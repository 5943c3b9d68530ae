"""Multivariate normal distributions, batched, with handwritten gradients.

A ``Gaussian`` is a batch of normals N(mean, Sigma): ``mean`` has shape
(..., d) and the covariance is given by exactly one keyword, in the words of
``scipy.stats`` and ``torch.distributions``::

    Gaussian(mean, cov=Sigma)         # (..., d, d) symmetric positive definite
    Gaussian(mean, scale_tril=L)      # (..., d, d) lower Cholesky factor, Sigma = L L^T
    Gaussian(mean, log_std=s)         # (..., d) diagonal form, Sigma = diag(exp(2 s))

``cov`` is factorised once and stored as ``scale_tril``. The batch shapes of
the mean and the covariance broadcast against each other (``batch_shape``).

Every value ``f`` has ``f_and_grad(..., dout=None)`` beside it returning
``(value, grads)``: ``value`` has the broadcast batch shape (0-d for a single
distribution), ``dout`` has that shape (default ones), and ``grads`` is a dict
keyed by parameter name holding the gradients of ``sum(dout * value)``, each
with its parameter's shape (a broadcast gradient is summed back). A gradient
w.r.t. ``scale_tril`` is lower triangular: the derivative w.r.t. each free
entry. Value-only functions run the forward pass only. The formulas and their
gradients are derived in ``derivations/gaussian_kl.md`` (G.n).

The private kernels (``_solve_tril``, ``_whiten``, ``_logdet_chol``,
``_log_prob_whitened``, ``_log_prob_chol``, ``_mahalanobis_chol``,
``_entropy_from_logdet``, ``_kl_chol_forward``, ``_kl_chol``) do no argument
checking. They are the one implementation of the Gaussian density, entropy
and KL in refvi: the models factorise their covariances and call them.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import solve_triangular

from refvi._batch import broadcast_batch, outer_sum, sum_to_shape
from refvi._validate import (
    as_float_array,
    check_dout,
    check_instance,
    check_int,
    check_lower_cholesky,
    check_rng,
    cholesky_of_spd,
    read_only_copy,
)

__all__ = [
    "Gaussian",
    "standard_normal",
    "log_prob",
    "log_prob_and_grad",
    "reparameterize",
    "reparameterize_and_grad",
    "sample",
    "entropy",
    "entropy_and_grad",
    "kl",
    "kl_and_grad",
]

LOG_2PI = float(np.log(2.0 * np.pi))

_KEYWORDS = "Gaussian(mean, cov=Sigma), Gaussian(mean, scale_tril=L) or "
_KEYWORDS += "Gaussian(mean, log_std=s)"


@dataclass(frozen=True, eq=False, init=False)
class Gaussian:
    """A batch of multivariate normals N(mean, Sigma).

    Parameters
    ----------
    mean : array_like, shape (..., d)
        The means.
    cov : array_like, shape (..., d, d), keyword only
        Symmetric positive definite covariances; factorised on construction
        and stored as ``scale_tril``.
    scale_tril : array_like, shape (..., d, d), keyword only
        Lower Cholesky factors L of the covariances Sigma = L L^T: entries
        above the diagonal exactly zero, positive diagonal.
    log_std : array_like, shape (..., d), keyword only
        Log standard deviations of a diagonal covariance diag(exp(2 log_std)),
        which must be finite and positive in float64.

    Exactly one of ``cov``, ``scale_tril``, ``log_std`` is given. The arrays
    are stored as read-only float64 copies (float32 and integers promoted);
    of ``scale_tril`` and ``log_std`` the one not in use is None. Invalid
    input raises ValueError or TypeError naming the argument.
    """

    mean: np.ndarray
    scale_tril: np.ndarray | None
    log_std: np.ndarray | None

    def __init__(self, mean, *args, cov=None, scale_tril=None, log_std=None):
        if args:
            raise TypeError(
                "Gaussian takes the mean as its only positional argument and the "
                f"covariance by keyword: {_KEYWORDS}; got {1 + len(args)} "
                "positional arguments"
            )
        given = [
            k
            for k, v in (("cov", cov), ("scale_tril", scale_tril), ("log_std", log_std))
            if v is not None
        ]
        if len(given) != 1:
            raise TypeError(
                f"Gaussian needs exactly one of cov=, scale_tril=, log_std= "
                f"({_KEYWORDS}); got {given or 'none'}"
            )
        mean = as_float_array(mean, "mean")
        if mean.ndim == 0:
            raise ValueError("mean must have shape (..., d); got a scalar")
        d = mean.shape[-1]
        if log_std is not None:
            log_std = as_float_array(log_std, "log_std")
            if log_std.ndim == 0 or log_std.shape[-1] != d:
                raise ValueError(
                    f"log_std must have shape (..., {d}) like mean; got {log_std.shape}"
                )
            with np.errstate(over="ignore", under="ignore"):
                var = np.exp(2.0 * log_std)
            if not np.all(np.isfinite(var) & (var > 0)):
                raise ValueError(
                    "log_std must give a finite positive variance exp(2 log_std); "
                    f"got log_std in [{log_std.min():.3g}, {log_std.max():.3g}]"
                )
            broadcast_batch(("mean", mean.shape[:-1]), ("log_std", log_std.shape[:-1]))
            log_std = read_only_copy(log_std)
        else:
            if cov is not None:
                scale_tril = cholesky_of_spd(cov, "cov", d=d, batch=True)
                name = "cov"
            else:
                scale_tril = check_lower_cholesky(
                    scale_tril, "scale_tril", d=d, batch=True
                )
                name = "scale_tril"
            broadcast_batch(("mean", mean.shape[:-1]), (name, scale_tril.shape[:-2]))
            scale_tril = read_only_copy(scale_tril)
        object.__setattr__(self, "mean", read_only_copy(mean))
        object.__setattr__(self, "scale_tril", scale_tril)
        object.__setattr__(self, "log_std", log_std)

    @property
    def d(self):
        """Dimension of each normal."""
        return self.mean.shape[-1]

    @property
    def is_diagonal(self):
        """Whether the covariance is given by ``log_std`` (the diagonal form)."""
        return self.log_std is not None

    @property
    def batch_shape(self):
        """Broadcast shape of the batch axes of the mean and the covariance."""
        if self.is_diagonal:
            scale_batch = self.log_std.shape[:-1]
        else:
            scale_batch = self.scale_tril.shape[:-2]
        return np.broadcast_shapes(self.mean.shape[:-1], scale_batch)

    @property
    def cov(self):
        """Covariances Sigma, shape (..., d, d) with the covariance's batch shape."""
        L = _factor(self)
        return L @ np.swapaxes(L, -1, -2)

    def to_full(self):
        """The same distributions given by ``scale_tril`` (diagonal: exp(log_std))."""
        return Gaussian(self.mean, scale_tril=_factor(self))


def standard_normal(d):
    """The standard normal N(0, I_d), in the diagonal form (log_std = 0)."""
    d = check_int(d, "d", minimum=1)
    return Gaussian(np.zeros(d), log_std=np.zeros(d))


def _factor(p):
    """Lower Cholesky factor of ``p``'s covariance, (..., d, d)."""
    if not p.is_diagonal:
        return p.scale_tril
    std = np.exp(p.log_std)
    return std[..., :, None] * np.eye(p.d)


# ---------------------------------------------------------------------------
# Private kernels: no argument checking.

#: Factors per chunk in ``_forward_stack``: a chunk's arrays stay in cache.
_CHUNK = 1024


def _unit_forward(U, X, s, e, lower_rhs):
    """In place X[:, s:e] <- U[:, s:e, s:e]^{-1} X[:, s:e], U unit lower triangular.

    Recursive halving: solve the top half, subtract its part from the bottom
    half by one batched matrix product, solve the bottom half. With
    ``lower_rhs``, X = [v | T] with T lower triangular, so row i of X (and of
    the solution) is zero beyond column i + 1 and those columns are skipped.
    """
    if e - s == 1:
        return
    h = (s + e) // 2
    cols = slice(h + 1 if lower_rhs else None)
    _unit_forward(U, X, s, h, lower_rhs)
    if e - s == 2:
        X[:, h, cols] -= U[:, h, s, None] * X[:, s, cols]
    else:
        X[:, h:e, cols] -= U[:, h:e, s:h] @ X[:, s:h, cols]
    _unit_forward(U, X, h, e, lower_rhs)


def _forward_stack(L, X, lower_rhs=False):
    """In place X_n <- L_n^{-1} X_n for lower triangular L (N, d, d), X (N, d, r).

    Forward substitution vectorised over the stack: the rows of L and X are
    first divided by L's diagonal (D^{-1} L X = D^{-1} B, D^{-1} L unit lower
    triangular), then ``_unit_forward`` eliminates (``lower_rhs`` as there),
    ``_CHUNK`` factors at a time.
    """
    for start in range(0, X.shape[0], _CHUNK):
        rows = slice(start, start + _CHUNK)
        diag = np.diagonal(L[rows], axis1=1, axis2=2)[:, :, None]
        X[rows] /= diag
        _unit_forward(L[rows] / diag, X[rows], 0, L.shape[1], lower_rhs)


def _solve_tril(L, B, trans=False, overwrite_b=False, lower_rhs=False):
    """X with L X = B (L^T X = B if ``trans``), L lower triangular; no checking.

    ``L`` (..., d, d) and ``B`` (..., d, r) broadcast over their batch axes.
    A single factor (2-D ``L``) is one LAPACK triangular solve with every
    right-hand side side by side; a stack uses ``_forward_stack``, in the
    memory of ``B`` when ``overwrite_b`` and B has the full batch shape. With
    ``lower_rhs`` (stacks, not ``trans``), B = [v | T] with T lower
    triangular (r = d + 1): the known zeros of B and X are skipped. Never an
    explicit inverse.
    """
    d, r = B.shape[-2:]
    if L.ndim == 2:
        cols = np.moveaxis(B, -2, 0).reshape(d, -1)
        X = solve_triangular(L, cols, lower=True, trans="T" if trans else "N")
        return np.moveaxis(X.reshape((d,) + B.shape[:-2] + (r,)), 0, -2)
    batch = np.broadcast_shapes(L.shape[:-2], B.shape[:-2])
    Ls = np.broadcast_to(L, batch + (d, d)).reshape(-1, d, d)
    full = batch + (d, r)
    if overwrite_b and B.shape == full and B.flags.c_contiguous:
        X = B
    else:
        X = np.array(np.broadcast_to(B, full), dtype=np.float64, order="C")
    Xs = X.reshape(-1, d, r)  # a view: the solve below writes into X
    if trans:
        # with J the reversal of the d axis, J L^T J is lower triangular and
        # (J L^T J)(J X) = J B
        _forward_stack(np.swapaxes(Ls[:, ::-1, ::-1], 1, 2), Xs[:, ::-1])
    else:
        _forward_stack(Ls, Xs, lower_rhs)
    return X


def _whiten(x, mean, L):
    """z = L^{-1} (x - mean) over broadcast batch axes, (..., d); (G.2).

    The data are shifted by the mean before the triangular solve.
    """
    return _solve_tril(L, (x - mean)[..., None])[..., 0]


def _logdet_chol(L):
    """log det(L L^T) = 2 sum_j log L_jj over the last two axes; (G.3)."""
    return 2.0 * np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)), axis=-1)


def _mahalanobis_chol(x, mean, L):
    """(x - mean)^T Sigma^{-1} (x - mean) = |z|^2 over broadcast batch axes; (G.2)."""
    z = _whiten(x, mean, L)
    return np.einsum("...j,...j->...", z, z)


def _log_prob_whitened(z, logdet_Sigma):
    """log N from whitened residuals z (..., d) and log det Sigma; (G.1)."""
    d = z.shape[-1]
    return -0.5 * (d * LOG_2PI + logdet_Sigma + np.einsum("...j,...j->...", z, z))


def _log_prob_chol(x, mean, L):
    """log N(x | mean, L L^T) over broadcast batch axes; (G.1)."""
    return _log_prob_whitened(_whiten(x, mean, L), _logdet_chol(L))


def _diag_inv(L):
    """diag(1 / L_jj) over the batch axes of ``L`` (..., d, d)."""
    d = L.shape[-1]
    return np.eye(d) / np.diagonal(L, axis1=-2, axis2=-1)[..., :, None]


def _entropy_from_logdet(logdet_Sigma, d):
    """H = d/2 (1 + log 2 pi) + 1/2 log det Sigma; (G.7)."""
    return 0.5 * d * (1.0 + LOG_2PI) + 0.5 * logdet_Sigma


class _KLCache(NamedTuple):
    X: np.ndarray  # [delta | M]: delta = L_p^{-1}(mean_q - mean_p), M = L_p^{-1} L_q


def _kl_chol_forward(mean_q, L_q, mean_p, L_p):
    """KL(N(mean_q, L_q L_q^T) || N(mean_p, L_p L_p^T)) over batch axes, and cache.

    (G.6) with the expectation under the first argument.
    """
    d = L_q.shape[-1]
    batch = np.broadcast_shapes(
        mean_q.shape[:-1], L_q.shape[:-2], mean_p.shape[:-1], L_p.shape[:-2]
    )
    rhs = np.empty(batch + (d, d + 1))
    rhs[..., 0] = mean_q - mean_p
    rhs[..., 1:] = L_q
    # one triangular solve for both: delta = L_p^{-1}(mean_q - mean_p) and
    # M = L_p^{-1} L_q, lower triangular like L_q (its zeros are skipped)
    X = _solve_tril(L_p, rhs, overwrite_b=True, lower_rhs=True)
    # (G.6)  KL = 1/2 (|M|_F^2 + |delta|^2 - d) + sum log diag L_p - sum log diag L_q
    value = 0.5 * (np.einsum("...ij,...ij->...", X, X) - d)
    value += 0.5 * (_logdet_chol(L_p) - _logdet_chol(L_q))
    return value, _KLCache(X)


def _kl_chol(mean_q, L_q, mean_p, L_p):
    """KL(N(mean_q, L_q L_q^T) || N(mean_p, L_p L_p^T)) over batch axes; (G.6)."""
    return _kl_chol_forward(mean_q, L_q, mean_p, L_p)[0]


def _kl_diag(mean_q, log_std_q, mean_p, log_std_p):
    """KL between diagonal normals (G.8), with r and u for the gradients."""
    # (G.8)  r = sigma_q^2 / sigma_p^2,  u = (mean_q - mean_p) / sigma_p
    #        KL = 1/2 sum_j (r_j + u_j^2 - 1 - log r_j)
    log_r = 2.0 * (log_std_q - log_std_p)
    r = np.exp(log_r)
    u = (mean_q - mean_p) * np.exp(-log_std_p)
    value = 0.5 * np.sum(r + u * u - 1.0 - log_r, axis=-1)
    return value, r, u


# ---------------------------------------------------------------------------
# Argument checks shared by the public functions.


def _check_dist(p, name):
    return check_instance(p, Gaussian, name)


def _check_points(x, p, name):
    """``x`` (..., d) as float64, its batch shape broadcasting with ``p``'s."""
    x = as_float_array(x, name)
    if x.ndim == 0 or x.shape[-1] != p.d:
        raise ValueError(f"{name} must have shape (..., {p.d}); got {x.shape}")
    batch = broadcast_batch((name, x.shape[:-1]), ("the distribution", p.batch_shape))
    return x, batch


def _scale_grad(p, dL_or_dlog_std, key):
    """A gradient dict entry for ``p``'s scale parameter, with ``key`` suffix."""
    name = "log_std" if p.is_diagonal else "scale_tril"
    return {name + key: dL_or_dlog_std}


# ---------------------------------------------------------------------------
# Density.


def log_prob(p, x):
    """log p(x) for points ``x`` (..., d), broadcast against the batch; (G.1).

    log N(x | mean, Sigma) = -1/2 (d log 2 pi + log det Sigma + |L^{-1}(x - mean)|^2),
    derivations/gaussian_kl.md (G.1)-(G.3).

    Parameters
    ----------
    p : Gaussian
    x : array_like, shape (..., d)
        Data ``(n, d)`` for one distribution gives ``(n,)``; the batch axes of
        ``x`` broadcast with ``p.batch_shape`` like torch.distributions.

    Returns
    -------
    ndarray, shape broadcast(x.shape[:-1], p.batch_shape)
    """
    _check_dist(p, "p")
    x, _ = _check_points(x, p, "x")
    if p.is_diagonal:
        z = (x - p.mean) * np.exp(-p.log_std)
        return _log_prob_whitened(z, 2.0 * np.sum(p.log_std, axis=-1))
    return _log_prob_chol(x, p.mean, p.scale_tril)


def log_prob_and_grad(p, x, dout=None):
    """log p(x) and the gradients of sum(dout * log p(x)).

    Implements derivations/gaussian_kl.md (G.1) with gradients (G.10)-(G.12)
    (``scale_tril``) and (G.13)-(G.14) (``log_std``).

    Returns
    -------
    value : ndarray, shape broadcast(x.shape[:-1], p.batch_shape)
    grads : dict
        ``{"x", "mean", "scale_tril"}`` or ``{"x", "mean", "log_std"}``, each
        with the shape of that argument.
    """
    _check_dist(p, "p")
    x, batch = _check_points(x, p, "x")
    dout = check_dout(dout, batch)
    if p.is_diagonal:
        inv_std = np.exp(-p.log_std)
        z = (x - p.mean) * inv_std
        value = _log_prob_whitened(z, 2.0 * np.sum(p.log_std, axis=-1))
        # (G.13)  d/dx = -Sigma^{-1}(x - mean) = -z / std,  d/dmean = +z / std
        a = dout[..., None] * z * inv_std
        # (G.14)  d/dlog_std_j = z_j^2 - 1
        dlog_std = sum_to_shape(dout[..., None] * (z * z - 1.0), p.log_std.shape)
        grads = {"log_std": dlog_std}
    else:
        L = p.scale_tril
        z = _whiten(x, p.mean, L)
        value = _log_prob_whitened(z, _logdet_chol(L))
        # (G.10)  a = Sigma^{-1}(x - mean) = L^{-T} z;  d/dx = -a,  d/dmean = +a
        a = dout[..., None] * _solve_tril(L, z[..., None], trans=True)[..., 0]
        # (G.12)  d/dL = tril(sum dout a z^T) - (sum dout) diag(1 / L_jj)
        n_out = sum_to_shape(np.broadcast_to(dout, batch), L.shape[:-2])
        dL = np.tril(outer_sum(a, z, L.shape)) - n_out[..., None, None] * _diag_inv(L)
        grads = {"scale_tril": dL}
    grads["x"] = sum_to_shape(-a, x.shape)
    grads["mean"] = sum_to_shape(a, p.mean.shape)
    return value, grads


# ---------------------------------------------------------------------------
# Sampling.


def reparameterize(p, eps):
    """x = mean + L eps for standard normal noise ``eps`` (..., d); (G.4).

    For the diagonal form L = diag(exp(log_std)). The batch axes of ``eps``
    broadcast with ``p.batch_shape``.
    """
    _check_dist(p, "p")
    eps, batch = _check_points(eps, p, "eps")
    return _reparameterize_forward(p, eps, batch)


def _reparameterize_forward(p, eps, batch):
    """mean + L eps over the broadcast batch, (batch..., d); (G.4)."""
    if p.is_diagonal:
        value = p.mean + eps * np.exp(p.log_std)
    else:
        L = p.scale_tril
        Leps = eps @ L.T if L.ndim == 2 else np.einsum("...ij,...j->...i", L, eps)
        value = p.mean + Leps
    return np.broadcast_to(value, batch + (p.d,)).copy()


def reparameterize_and_grad(p, eps, dout=None):
    """x = mean + L eps and the gradients of sum(dout * x); (G.4)-(G.5).

    Parameters
    ----------
    p : Gaussian
    eps : array_like, shape (..., d)
        Standard normal noise.
    dout : array_like, optional
        Upstream gradient with the samples' shape (default ones).

    Returns
    -------
    value : ndarray, shape broadcast(eps.shape[:-1], p.batch_shape) + (d,)
    grads : dict
        ``{"eps", "mean", "scale_tril"}`` or ``{"eps", "mean", "log_std"}``.
    """
    _check_dist(p, "p")
    eps, batch = _check_points(eps, p, "eps")
    value = _reparameterize_forward(p, eps, batch)
    dout = check_dout(dout, value.shape)
    grads = {"mean": sum_to_shape(dout, p.mean.shape)}
    if p.is_diagonal:
        std = np.exp(p.log_std)
        # (G.5)  d/deps = dout std,  d/dlog_std_j = dout_j eps_j std_j
        deps = dout * std
        grads["log_std"] = sum_to_shape(dout * eps * std, p.log_std.shape)
    else:
        # (G.5)  d/deps = L^T dout,  d/dL = tril(sum dout eps^T)
        L = p.scale_tril
        deps = dout @ L if L.ndim == 2 else np.einsum("...ij,...i->...j", L, dout)
        grads["scale_tril"] = np.tril(outer_sum(dout, eps, L.shape))
    grads["eps"] = sum_to_shape(deps, eps.shape)
    return value, grads


def sample(p, rng, n):
    """``n`` draws from each distribution, shape (n, *p.batch_shape, d).

    reparameterize(p, eps) with eps = rng.standard_normal((n, *batch_shape, d)).
    """
    _check_dist(p, "p")
    rng = check_rng(rng)
    n = check_int(n, "n", minimum=1)
    return reparameterize(p, rng.standard_normal((n, *p.batch_shape, p.d)))


# ---------------------------------------------------------------------------
# Entropy and KL.


def entropy(p):
    """Differential entropy H[p] = d/2 (1 + log 2 pi) + 1/2 log det Sigma; (G.7).

    Returns an array of shape ``p.batch_shape`` (0-d for one distribution).
    """
    _check_dist(p, "p")
    if p.is_diagonal:
        logdet = 2.0 * np.sum(p.log_std, axis=-1)
    else:
        logdet = _logdet_chol(p.scale_tril)
    H = _entropy_from_logdet(logdet, p.d)
    return np.broadcast_to(H, p.batch_shape).copy()


def entropy_and_grad(p, dout=None):
    """H[p] (G.7) and the gradients of sum(dout * H) (G.15).

    Returns
    -------
    value : ndarray, shape p.batch_shape
    grads : dict
        ``{"mean": zeros, "scale_tril": diag(1 / L_jj)}`` or
        ``{"mean": zeros, "log_std": ones}``, times ``dout``.
    """
    value = entropy(p)
    dout = check_dout(dout, p.batch_shape)
    grads = {"mean": np.zeros(p.mean.shape)}
    if p.is_diagonal:
        # (G.15)  dH/dlog_std_j = 1
        dlog_std = np.broadcast_to(dout[..., None], p.batch_shape + (p.d,))
        grads["log_std"] = sum_to_shape(dlog_std, p.log_std.shape)
    else:
        # (G.15)  dH/dL = diag(1 / L_jj)
        L = p.scale_tril
        grads["scale_tril"] = sum_to_shape(
            dout[..., None, None] * _diag_inv(L), L.shape
        )
    return value, grads


def _check_kl_pair(q, p):
    _check_dist(q, "q")
    _check_dist(p, "p")
    if p.d != q.d:
        raise ValueError(
            f"p must have the dimension of q; got p.d = {p.d}, q.d = {q.d}"
        )
    return broadcast_batch(("q", q.batch_shape), ("p", p.batch_shape))


def kl(q, p):
    """KL(q || p) = E_q[log q(z) - log p(z)], batched over broadcast batch axes.

    The first argument is the distribution the expectation is under, as VI
    texts write KL(q || p). Either may be full or diagonal. Full: (G.6) with
    M = L_p^{-1} L_q, delta = L_p^{-1}(mean_q - mean_p),
    KL = 1/2 (|M|_F^2 + |delta|^2 - d) + sum log diag L_p - sum log diag L_q;
    both diagonal: (G.8). derivations/gaussian_kl.md writes the same formulas
    with the letters p and q exchanged.

    Returns
    -------
    ndarray, shape broadcast(q.batch_shape, p.batch_shape)
    """
    batch = _check_kl_pair(q, p)
    if q.is_diagonal and p.is_diagonal:
        value = _kl_diag(q.mean, q.log_std, p.mean, p.log_std)[0]
    else:
        value = _kl_chol(q.mean, _factor(q), p.mean, _factor(p))
    return np.broadcast_to(value, batch).copy()


def kl_and_grad(q, p, dout=None):
    """KL(q || p) and the gradients of sum(dout * KL) w.r.t. both arguments.

    Full: (G.6) with gradients (G.16)-(G.18); both diagonal: (G.8) with
    gradients (G.19)-(G.20); a diagonal argument paired with a full one is
    computed in its full form, L = diag(exp(log_std)), and its gradient taken
    by the chain rule d/dlog_std_j = L_jj dL_jj.

    Returns
    -------
    value : ndarray, shape broadcast(q.batch_shape, p.batch_shape)
    grads : dict
        ``"mean_q"``, ``"scale_tril_q"`` or ``"log_std_q"``, ``"mean_p"``,
        ``"scale_tril_p"`` or ``"log_std_p"``, each with its parameter's shape.
    """
    batch = _check_kl_pair(q, p)
    unit_dout = dout is None
    dout = check_dout(dout, batch)
    if q.is_diagonal and p.is_diagonal:
        value, r, u = _kl_diag(q.mean, q.log_std, p.mean, p.log_std)
        w = dout[..., None]
        # (G.19)  d/dmean_q = u / sigma_p = -d/dmean_p
        dmean_q = w * u * np.exp(-p.log_std)
        # (G.20)  d/dlog_std_q = r - 1,  d/dlog_std_p = 1 - r - u^2
        dq = sum_to_shape(w * (r - 1.0), q.log_std.shape)
        dp = sum_to_shape(w * (1.0 - r - u * u), p.log_std.shape)
    else:
        L_q, L_p = _factor(q), _factor(p)
        value, (X,) = _kl_chol_forward(q.mean, L_q, p.mean, L_p)
        diag = np.arange(p.d)
        upper = ~np.tri(p.d, dtype=bool)
        A = _solve_tril(L_p, X, trans=True)  # [L_p^{-T} delta | L_p^{-T} M]
        # (G.16)  d/dmean_q = L_p^{-T} delta = Sigma_p^{-1}(mean_q - mean_p)
        #         = -d/dmean_p
        dmean_q = dout[..., None] * A[..., 0]
        # (G.17)  d/dL_q = tril(L_p^{-T} M) - diag(1 / L_q,jj)
        dL_q = np.tril(A[..., 1:])
        dL_q[..., diag, diag] -= 1.0 / L_q[..., diag, diag]
        # (G.18)  d/dL_p = -tril(L_p^{-T} (M M^T + delta delta^T)) + diag(1 / L_p,jj)
        dL_p = np.negative(A @ np.swapaxes(X, -1, -2))
        np.copyto(dL_p, 0.0, where=upper)
        dL_p[..., diag, diag] += 1.0 / L_p[..., diag, diag]
        if not unit_dout:
            dL_q *= dout[..., None, None]
            dL_p *= dout[..., None, None]
        dq = _to_scale(q, dL_q)
        dp = _to_scale(p, dL_p)
    grads = {
        "mean_q": sum_to_shape(dmean_q, q.mean.shape),
        **_scale_grad(q, dq, "_q"),
        "mean_p": sum_to_shape(-dmean_q, p.mean.shape),
        **_scale_grad(p, dp, "_p"),
    }
    return np.broadcast_to(value, batch).copy(), grads


def _to_scale(p, dL):
    """A full-form gradient dL (batch, d, d) as the gradient of ``p``'s parameter."""
    if p.is_diagonal:
        # L = diag(exp(log_std)):  d/dlog_std_j = L_jj dL_jj
        diag = np.diagonal(dL, axis1=-2, axis2=-1) * np.exp(p.log_std)
        return sum_to_shape(diag, p.log_std.shape)
    if dL.shape == p.scale_tril.shape:
        return dL  # no broadcast to undo (sum_to_shape would copy)
    return sum_to_shape(dL, p.scale_tril.shape)
