"""Gaussian mixture: z ~ Cat(pi), x | z=k ~ N(mu_k, Sigma_k).

Four covariance types, the four scikit-learn offers, each with one scale
parameter (derivations/mixture.md (GM.1)), named as what it is:

============  ============  ==============  ======================================
type          parameter     shape           meaning
============  ============  ==============  ======================================
``full``      ``L``         (K, d, d)       lower Cholesky factor, Sigma_k = L_k L_k^T
``tied``      ``L``         (d, d)          one lower factor, Sigma_k = L L^T for all k
``diag``      ``std``       (K, d)          standard deviations, Sigma_k = diag(std_k)^2
``spherical`` ``std``       (K,)            standard deviation, Sigma_k = std_k^2 I
============  ============  ==============  ======================================

A model holds exactly one of ``L`` and ``std`` (the other is None), and its
gradients are keyed by that name: ``"L"`` holds derivatives w.r.t. the free
(lower-triangular) entries of the factor, ``"std"`` w.r.t. the standard
deviations.

The mixing weights are stored as log-weights ``log_weights`` (log pi_k,
-inf for an emptied component); ``weights`` is derived from them, so a
weight below the smallest float (from_logits([0, -1000])) keeps its value.

Per-datum quantities are computed over row blocks of the data, all
components at once: the residuals x_i - mu_k of the block are formed first
and then whitened, y_ik = L_k^{-1}(x_i - mu_k), by one stacked product with
the whitening matrices L_k^{-T} (see :func:`_whiten_block`). Shifting before
whitening keeps y exact to rounding however far the data sit from the origin
in units of sigma (whitening x and mu separately loses eps |mu| / sigma). The
block's work buffers are allocated once per pass and stay in cache.

Accuracy (measured against a 50-digit evaluation of the naive formulas over
the stress corpus of tests/accuracy, see docs/accuracy.md): log p(x), log
responsibilities, ELBO and KL to the posterior within a few eps relative to
their size plus the conditioning of the whitened residuals; gradients within
about 1e-12 relative to their largest entry.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import linalg
from scipy.special import logsumexp

from refvi import categorical
from refvi._validate import (
    WEIGHT_SUM_TOL,
    as_data,
    as_float_array,
    check_dout,
    check_instance,
    check_lower_cholesky,
    check_weights,
    cholesky_of_spd,
    read_only_copy,
)
from refvi.gaussian import _log_prob_whitened

__all__ = [
    "COVARIANCE_TYPES",
    "GaussianMixture",
    "log_prior",
    "log_lik",
    "log_joint",
    "log_marginal",
    "log_marginal_and_grad",
    "log_responsibilities",
    "responsibilities",
    "elbo",
    "elbo_and_grad",
    "kl_to_posterior",
    "kl_to_posterior_and_grad",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# Rows per block: b = _BLOCK_ENTRIES / (K d), so that each of the two (K, b, d)
# work buffers (residuals and whitened residuals of all K components) holds
# 2^16 entries (512 KiB) and stays in the L2 cache between the E-step that
# fills it and the M-step products that read it. One block is a few numpy
# calls over all K components at once (stacked products, one call each), not
# K times as many. Measured on 2 shared cores (1 BLAS thread, same process,
# alternating): an EM iteration took 0.6-0.7 of the time of the former
# component-by-component loop at n = 1e5, d = 32, K = 16 and at n = 1e6,
# d = 16, K = 8; blocks of half this size were slower, of twice it no faster. Each
# stacked product's slices (b, d) @ (d, d) are small enough that OpenBLAS
# runs them on one thread, so threads never wait for each other.
_BLOCK_ENTRIES = 1 << 16


def _check_covariance_type(covariance_type):
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}; "
            f"got {covariance_type!r}"
        )


def _scale_name(covariance_type):
    """The name of the scale parameter of ``covariance_type``: ``"L"`` for the
    Cholesky factors of full and tied, ``"std"`` for the standard deviations
    of diag and spherical."""
    return "L" if covariance_type in ("full", "tied") else "std"


def _check_scale(L, std, covariance_type, K, d):
    """Validate the scale parameter of ``covariance_type``; return (L, std).

    full: K lower factors ``L`` (K, d, d); tied: one ``L`` (d, d); diag:
    standard deviations ``std`` (K, d); spherical: ``std`` (K,). Exactly the
    type's parameter must be given. Factors are checked by
    ``refvi._validate.check_lower_cholesky``, standard deviations for > 0.
    """
    name = _scale_name(covariance_type)
    given, other = (L, std) if name == "L" else (std, L)
    if other is not None:
        wrong = "std" if name == "L" else "L"
        what = "Cholesky factors" if name == "L" else "standard deviations"
        raise ValueError(
            f"{wrong} is not a parameter of covariance_type {covariance_type!r}; "
            f"give {name} ({what})"
        )
    if given is None:
        raise ValueError(
            f"{name} must be given for covariance_type {covariance_type!r}"
        )
    if covariance_type == "full":
        return check_lower_cholesky(L, "L", d=d, n=K), None
    if covariance_type == "tied":
        return check_lower_cholesky(L, "L", d=d), None
    shape = (K, d) if covariance_type == "diag" else (K,)
    std = as_float_array(std, "std", shape=shape)
    if np.any(std <= 0):
        raise ValueError(f"std must have positive entries; got min {std.min():.3g}")
    return None, std


def _as_log_weights(a, name):
    """A vector of logits or log-weights: real, no NaN or +inf (-inf is a zero
    weight), at least one finite entry."""
    lw = np.asarray(a)
    if lw.dtype == bool or not (
        np.issubdtype(lw.dtype, np.integer) or np.issubdtype(lw.dtype, np.floating)
    ):
        raise TypeError(f"{name} must be a real numeric array; got dtype {lw.dtype}")
    lw = lw.astype(np.float64)
    if lw.ndim != 1 or lw.size == 0:
        raise ValueError(f"{name} must be a non-empty vector; got shape {lw.shape}")
    if np.any(np.isnan(lw)) or np.any(lw == np.inf) or not np.any(np.isfinite(lw)):
        raise ValueError(
            f"{name} must be finite or -inf (a zero weight), at least one finite"
        )
    return lw


def _check_log_weights(log_weights):
    """Log mixing weights (:func:`_as_log_weights`) with logsumexp within
    ``WEIGHT_SUM_TOL`` of 0."""
    lw = _as_log_weights(log_weights, "log_weights")
    total = float(logsumexp(lw))
    if abs(np.expm1(total)) > WEIGHT_SUM_TOL:
        raise ValueError(
            f"log_weights must have logsumexp 0 (weights summing to one within "
            f"{WEIGHT_SUM_TOL:g}); got logsumexp {total!r}"
        )
    return lw


@dataclass(frozen=True, eq=False, init=False)
class GaussianMixture:
    """Frozen parameters of a K-component Gaussian mixture in d dimensions.

    p(x) = sum_k pi_k N(x; means_k, Sigma_k), Sigma_k from the type's scale
    parameter as in the module docstring (derivations/mixture.md (GM.1)).

    Parameters
    ----------
    weights : array_like, shape (K,), optional
        Mixing weights pi: non-negative, summing to one within
        :data:`refvi._validate.WEIGHT_SUM_TOL`. A zero weight is allowed (an emptied
        component, see :func:`refvi.models.mixture_em.em`). Give exactly one of
        ``weights`` and ``log_weights``.
    means : array_like, shape (K, d)
        Component means mu_k.
    L : array_like, optional
        Lower Cholesky factors with positive diagonal, for ``full`` (K, d, d)
        and ``tied`` (d, d) only.
    covariance_type : {"full", "tied", "diag", "spherical"}
    std : array_like, optional (keyword only)
        Positive standard deviations, for ``diag`` (K, d) and ``spherical``
        (K,) only.
    log_weights : array_like, shape (K,), optional (keyword only)
        log pi: the stored parameter; -inf is a zero weight; logsumexp must
        be 0 within ``WEIGHT_SUM_TOL``.

    The arrays are copied and made read-only; ``weights`` = exp(log_weights)
    is derived. The parameter the type does not use (``std`` for full/tied,
    ``L`` for diag/spherical) is None.
    """

    log_weights: np.ndarray
    means: np.ndarray
    L: np.ndarray | None
    std: np.ndarray | None
    covariance_type: str = "full"

    def __init__(
        self,
        weights=None,
        means=None,
        L=None,
        covariance_type="full",
        *,
        std=None,
        log_weights=None,
    ):
        _check_covariance_type(covariance_type)
        if (weights is None) == (log_weights is None):
            raise ValueError("give exactly one of weights and log_weights")
        if weights is not None:
            log_weights = _log_weights(check_weights(weights))
        else:
            log_weights = _check_log_weights(log_weights)
        K = log_weights.shape[0]
        if means is None:
            raise ValueError("means must be given")
        means = as_float_array(means, "means", ndim=2, shape=(K, None))
        L, std = _check_scale(L, std, covariance_type, K, means.shape[1])
        object.__setattr__(self, "log_weights", read_only_copy(log_weights))
        object.__setattr__(self, "means", read_only_copy(means))
        object.__setattr__(self, "L", None if L is None else read_only_copy(L))
        object.__setattr__(self, "std", None if std is None else read_only_copy(std))
        object.__setattr__(self, "covariance_type", covariance_type)

    @property
    def weights(self):
        """Mixing weights pi = exp(log_weights), shape (K,), read-only."""
        w = np.exp(self.log_weights)
        w.setflags(write=False)
        return w

    @property
    def n_components(self):
        """K, the number of components."""
        return self.log_weights.shape[0]

    @property
    def d(self):
        """The data dimension."""
        return self.means.shape[1]

    @property
    def logits(self):
        """Mixing logits log pi_k (K,); the gradients' ``"logits"`` point."""
        return self.log_weights

    @classmethod
    def from_logits(cls, logits, means, L=None, covariance_type="full", *, std=None):
        """Build a mixture with pi = softmax(logits) (GM.1), stored exactly as
        log_weights = logits - logsumexp(logits); a -inf logit is a zero weight.
        ``L`` (full, tied) or ``std`` (diag, spherical) as in the constructor."""
        lg = _as_log_weights(logits, "logits")
        return cls(
            None, means, L, covariance_type, std=std, log_weights=lg - logsumexp(lg)
        )

    @classmethod
    def from_covariances(cls, weights, means, covariances, covariance_type="full"):
        """Build a mixture from covariances in scikit-learn's layout.

        ``covariances`` is (K, d, d) for full, (d, d) for tied, (K, d)
        variances for diag and (K,) variances for spherical, exactly as
        ``sklearn.mixture.GaussianMixture.covariances_``. Full and tied
        matrices must be symmetric positive definite; diag and spherical
        variances positive.
        """
        _check_covariance_type(covariance_type)
        K, d = as_float_array(means, "means", ndim=2).shape
        if covariance_type == "full":
            C = as_float_array(covariances, "covariances", shape=(K, d, d))
            L = np.stack(
                [cholesky_of_spd(C_k, f"covariances[{k}]") for k, C_k in enumerate(C)]
            )
            return cls(weights, means, L, covariance_type)
        if covariance_type == "tied":
            L = cholesky_of_spd(covariances, "covariances", d=d)
            return cls(weights, means, L, covariance_type)
        var = as_float_array(
            covariances,
            "covariances",
            shape=(K, d) if covariance_type == "diag" else (K,),
        )
        if np.any(var <= 0):
            raise ValueError(
                f"covariances must be positive for covariance_type="
                f"{covariance_type!r}; got min {var.min():.3g}"
            )
        return cls(weights, means, None, covariance_type, std=np.sqrt(var))

    def covariances(self):
        """Covariances in scikit-learn's layout for this covariance type."""
        if self.covariance_type == "full":
            return self.L @ np.swapaxes(self.L, -1, -2)
        if self.covariance_type == "tied":
            return self.L @ self.L.T
        return self.std**2

    def dense_covariances(self):
        """Covariances Sigma_k as a dense (K, d, d) array, for every type."""
        K, d = self.n_components, self.d
        if self.covariance_type == "full":
            return self.covariances()
        if self.covariance_type == "tied":
            return np.broadcast_to(self.covariances(), (K, d, d)).copy()
        var = np.broadcast_to((self.std**2).reshape(K, -1), (K, d))
        return var[:, :, None] * np.eye(d)


def _scale(model):
    """The model's scale parameter: ``L`` (full, tied) or ``std`` (diag, spherical)."""
    return model.L if model.std is None else model.std


# --------------------------------------------------------------------------
# Per-model precomputation and the batched component log-density kernel.
# --------------------------------------------------------------------------


class _Prepared(NamedTuple):
    """Quantities fixed by the parameters, computed once per model.

    ``means`` (K, d) are the component means (minus the ``origin`` the data
    rows are given relative to, if any), subtracted from every data row
    BEFORE whitening. For full, ``P`` (K, d, d) holds the whitening matrices
    L_k^{-T}; for tied, ``P`` is the shared L^{-T} (d, d); for diag/spherical
    it holds 1/std, shape (K, d) (spherical: (K, 1)). ``logdet`` (K,) is
    log det Sigma_k and ``log_w`` (K,) is log pi_k.
    """

    covariance_type: str
    means: np.ndarray
    P: np.ndarray
    logdet: np.ndarray
    log_w: np.ndarray


def _log_weights(weights):
    with np.errstate(divide="ignore"):
        return np.log(weights)


def _prepare(model, origin=None):
    """Precompute the kernel's per-model quantities. No argument checking.

    With ``origin`` (d,), data rows are offsets from it: the residual of a
    row delta is delta - (mu_k - origin), so a point origin + delta closer to
    mu_k than the rounding of origin + delta is still resolved (quadrature
    nodes of a tiny component, :func:`refvi.mixture_kl.kl_quadrature`).

    The whitening matrices L_k^{-T} come from one triangular solve of each
    d x d factor against the identity (derivations/mixture.md (GM.3)); no
    covariance matrix is ever inverted.
    """
    ctype = model.covariance_type
    K, d = model.n_components, model.d
    L, std = model.L, model.std
    if ctype == "full":
        inv_L = linalg.solve_triangular(
            L, np.broadcast_to(np.eye(d), L.shape), lower=True, check_finite=False
        )
        P = np.ascontiguousarray(np.swapaxes(inv_L, 1, 2))  # L_k^{-T}
        logdet_half = np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    elif ctype == "tied":
        inv_L = linalg.solve_triangular(L, np.eye(d), lower=True, check_finite=False)
        P = np.ascontiguousarray(inv_L.T)
        logdet_half = np.full(K, np.log(np.diag(L)).sum())
    elif ctype == "diag":
        P = 1.0 / std
        logdet_half = np.log(std).sum(axis=1)
    else:  # spherical
        P = (1.0 / std)[:, None]
        logdet_half = d * np.log(std)
    means = model.means if origin is None else model.means - origin
    return _Prepared(ctype, means, P, 2.0 * logdet_half, model.log_weights)


def _whiten_block(prep, R, Y):
    """Whitened residuals y_ik = L_k^{-1}(x_i - mu_k) of a block, all components.

    No argument checking. ``R`` (K, b, d) holds the block's residuals
    x_i - mu_k (formed by :func:`_blocks` with ``prep.means``: shift before
    you whiten, so no rounding of size eps |x| / sigma enters y); they are
    whitened into ``Y`` (K, b, d, returned) by one stacked product
    (derivations/mixture.md (GM.3)).
    """
    # (GM.3)  y_ik = L_k^{-1}(x_i - mu_k) = (x_i - mu_k) L_k^{-T}
    if prep.covariance_type in ("full", "tied"):
        return np.matmul(R, prep.P, out=Y)
    return np.multiply(R, prep.P[:, None, :], out=Y)


def _log_density_block(prep, R, Y, out, joint):
    """log N(x_i; mu_k, Sigma_k), plus log pi_k if ``joint``, into ``out`` (K, b).

    No argument checking. ``R`` holds the block's residuals x_i - mu_k and
    ``Y`` is a work buffer, both (K, b, d) (:func:`_whiten_block`). Implements
    derivations/mixture.md (GM.2)-(GM.3); a zero-weight component's joint
    row is -inf.
    """
    y = _whiten_block(prep, R, Y)
    c = prep.logdet - 2.0 * prep.log_w if joint else prep.logdet
    # (GM.2)  log N(x; mu_k, Sigma_k), the density from whitened residuals
    # by refvi.gaussian's one implementation
    out[...] = _log_prob_whitened(y, c[:, None])
    if joint:
        out[prep.log_w == -np.inf] = -np.inf
    return out


def _blocks(x, K, means=None):
    """Row blocks of x with their work buffers, allocated once and reused.

    Yields (rows, xb, R, Y, lj): the slice, the block x[rows] (b, d), two
    (K, b, d) buffers and one (K, b) buffer, all C-contiguous. With ``means``
    (K, d), ``R`` holds the block's residuals xb_i - means_k on each yield:
    one subtraction of contiguous rows of b d entries, the block against the
    means tiled b times (a broadcast subtraction over the short last axis d
    took 1.7x as long). No checking.
    """
    n, d = x.shape
    step = max(1, min(n, _BLOCK_ENTRIES // (K * d)))
    R, Y, lj = np.empty((K, step, d)), np.empty((K, step, d)), np.empty((K, step))
    if means is not None:
        tiled = np.tile(means, (1, step))  # row k: mu_k repeated step times
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        b = rows.stop - start
        if b < step:  # the last, shorter block: contiguous buffers of its own
            R, Y, lj = np.empty((K, b, d)), np.empty((K, b, d)), np.empty((K, b))
        xb = x[rows]
        if means is not None:
            np.subtract(xb.reshape(1, b * d), tiled[:, : b * d], out=R.reshape(K, -1))
        yield rows, xb, R, Y, lj


def _blocked(model, x, joint, origin=None):
    """log p(x_i, z=k) (``joint``) or log N(x_i; mu_k, Sigma_k), (n, K). No checking."""
    prep = _prepare(model, origin)
    out = np.empty((x.shape[0], model.n_components))
    for rows, _, R, Y, lj in _blocks(x, model.n_components, prep.means):
        out[rows] = _log_density_block(prep, R, Y, lj, joint).T
    return out


def _log_joint(model, x, origin=None):
    """log p(x_i, z=k) for all rows and components, (n, K). No checking.

    With ``origin``, the rows of ``x`` are offsets from it (see :func:`_prepare`).
    """
    return _blocked(model, x, True, origin)


def _check_model(model, name="model"):
    return check_instance(model, GaussianMixture, name)


def _validate_x(model, x):
    _check_model(model)
    return as_data(x, d=model.d)


# --------------------------------------------------------------------------
# Public densities for data x (n, d).
# --------------------------------------------------------------------------


def log_prior(model):
    """log p(z=k) = log pi_k, shape (K,) (derivations/mixture.md (GM.1)).

    An emptied component (weight exactly 0) gives -inf.
    """
    _check_model(model)
    return model.log_weights


def log_lik(model, x):
    """Component log-likelihoods log N(x_i; mu_k, Sigma_k), shape (n, K).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Implements derivations/mixture.md (GM.2)-(GM.3), computed directly (not
    as log p(x, z) - log pi, which is NaN for a zero weight).
    """
    x = _validate_x(model, x)
    return _blocked(model, x, False)


def log_joint(model, x):
    """log p(x_i, z=k) = log pi_k + log N(x_i; mu_k, Sigma_k), shape (n, K).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Implements derivations/mixture.md (GM.2).
    """
    x = _validate_x(model, x)
    return _log_joint(model, x)


def log_marginal(model, x):
    """log p(x_i) = logsumexp_k log p(x_i, z=k), shape (n,).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Implements derivations/mixture.md (GM.4); the log-sum-exp never
    exponentiates a number larger than 1, so data far from every component
    (log p(x) of order -1e5) are exact to rounding.
    """
    x = _validate_x(model, x)
    return logsumexp(_log_joint(model, x), axis=1)


def log_responsibilities(model, x):
    """log p(z=k | x_i) = log p(x_i, z=k) - log p(x_i), shape (n, K).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Implements derivations/mixture.md (GM.5).
    """
    x = _validate_x(model, x)
    lj = _log_joint(model, x)
    return lj - logsumexp(lj, axis=1, keepdims=True)


def responsibilities(model, x):
    """Responsibilities r_ik = p(z=k | x_i), shape (n, K); rows sum to one.

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Implements derivations/mixture.md (GM.5).
    """
    return np.exp(log_responsibilities(model, x))


# --------------------------------------------------------------------------
# Gradients. Parameters: logits (K,) with pi = softmax(logits), means (K, d),
# and L or std in the per-type parameterisation of the module docstring.
# --------------------------------------------------------------------------


class _ComponentMoments(NamedTuple):
    """Weighted moments of the whitened residuals y_ik = L_k^{-1}(x_i - mu_k).

    For weights g (n, K): ``G`` (K,) = sum_i g_ik, ``m`` (K, d) = sum_i g_ik
    y_ik, ``M`` = sum_i g_ik y_ik y_ik^T, (K, d, d) for full/tied and only its
    diagonal (K, d) for diag/spherical.
    """

    G: np.ndarray
    m: np.ndarray
    M: np.ndarray


def _component_moments(prep, x, g):
    """Accumulate :class:`_ComponentMoments` over row blocks. No checking."""
    K = g.shape[1]
    d = x.shape[1]
    dense = prep.covariance_type in ("full", "tied")
    G, m = g.sum(axis=0), np.zeros((K, d))
    M = np.zeros((K, d, d)) if dense else np.zeros((K, d))
    for rows, _, R, Y, g_b in _blocks(x, K, prep.means):
        g_b[...] = g[rows].T
        y = _whiten_block(prep, R, Y)
        m += np.matmul(g_b[:, None, :], y)[:, 0]
        if dense:
            # M_k += sum_i g_ik y_i y_i^T, R reused for g_ik y_i
            M += np.matmul(np.swapaxes(np.multiply(y, g_b[:, :, None], out=R), 1, 2), y)
        else:
            M += np.matmul(g_b[:, None, :], np.multiply(y, y, out=R))[:, 0]
    return _ComponentMoments(G, m, M)


def _component_grads(model, x, g):
    """Gradients of sum_ik g_ik log N(x_i; mu_k, Sigma_k) w.r.t. means and scale.

    No argument checking. Implements derivations/mixture.md (GM.10)-(GM.13):
    with y = L_k^{-1}(x - mu_k),

    - full:      d/dmu_k = L_k^{-T} m_k,
                 d/dL_k = tril(L_k^{-T} M_k) - G_k diag(1 / L_k,jj)
    - tied:      as full with M and G summed over k for the shared L
    - diag:      d/dmu_kj = m_kj / s_kj,  d/ds_kj = (M_kj - G_k) / s_kj
    - spherical: d/dmu_k = m_k / s_k,     d/ds_k = (sum_j M_kj - d G_k) / s_k

    (s = std). Returns (d/dmeans, d/dL or d/dstd).
    """
    prep = _prepare(model)
    G, m, M = _component_moments(prep, x, g)
    L, s, d = model.L, model.std, model.d
    ctype = model.covariance_type
    if ctype == "full":
        P = prep.P
        # (GM.10)  d/dmu_k = L_k^{-T} m_k
        dmeans = np.einsum("kij,kj->ki", P, m)
        # (GM.11)  d/dL_k = tril(L_k^{-T} M_k) - G_k diag(1 / L_k,jj)
        dL = np.tril(P @ M)
        dL -= (
            G[:, None, None] * np.eye(d) / np.diagonal(L, axis1=1, axis2=2)[:, None, :]
        )
    elif ctype == "tied":
        P = prep.P
        dmeans = m @ P.T
        # (GM.11)  shared L: M and G summed over components
        dL = np.tril(P @ M.sum(axis=0)) - G.sum() * np.diag(1.0 / np.diag(L))
    elif ctype == "diag":
        # (GM.12)  d/dmu_kj = m_kj / s_kj,  d/ds_kj = (M_kj - G_k) / s_kj
        return m / s, (M - G[:, None]) / s
    else:
        # (GM.13)  d/dmu_k = m_k / s_k,  d/ds_k = (sum_j M_kj - d G_k) / s_k
        return m / s[:, None], (M.sum(axis=1) - d * G) / s
    return dmeans, dL


def _logits_grad(weights, G):
    """d/dlogits of sum_k G_k log pi_k with pi = softmax(logits); (GM.9).

    d log pi_j / d logits_k = [j = k] - pi_k, so the gradient is
    G_k - pi_k sum_j G_j.
    """
    return G - weights * G.sum()


def _grads(model, x, g):
    dmeans, dscale = _component_grads(model, x, g)
    return {
        "logits": _logits_grad(model.weights, g.sum(axis=0)),
        "means": dmeans,
        _scale_name(model.covariance_type): dscale,
    }


def log_marginal_and_grad(model, x, dout=None):
    """log p(x_i) (n,) and the gradients of sum_i dout_i log p(x_i).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Implements derivations/mixture.md (GM.4) and (GM.8): the weight of
    log p(x_i, z=k) in d log p(x_i) is the responsibility r_ik, so every
    gradient is that of the auxiliary sum with g_ik = dout_i r_ik.

    Returns
    -------
    value : ndarray, shape (n,)
    grads : dict
        ``"logits"`` (K,), ``"means"`` (K, d), and ``"L"`` (full, tied) or
        ``"std"`` (diag, spherical) with that parameter's shape.
    """
    x = _validate_x(model, x)
    dout = check_dout(dout, x.shape[0])
    lj = _log_joint(model, x)
    lp = logsumexp(lj, axis=1)
    r = np.exp(lj - lp[:, None])
    return lp, _grads(model, x, dout[:, None] * r)


def _check_q_logits(model, x, q_logits):
    return as_float_array(q_logits, "q_logits", shape=(x.shape[0], model.n_components))


def _check_weights_positive(model):
    """The KL to the posterior needs log p(x, z=k) finite for every k."""
    zero = model.log_weights == -np.inf
    if np.any(zero):
        raise ValueError(
            "kl_to_posterior needs every weight positive; component(s) "
            f"{np.flatnonzero(zero).tolist()} have weight 0"
        )


def _expected_log_joint(q, lj):
    """sum_k q_ik log p(x_i, z=k), with 0 * (-inf) = 0 for emptied components."""
    return np.sum(np.multiply(q, lj, out=np.zeros_like(lj), where=q > 0), axis=1)


def elbo(model, x, q_logits):
    """ELBO(q) = E_q[log p(x_i, z)] + H(q_i) per datum, shape (n,).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    q(z) = softmax(q_logits_i) is any categorical per data point, q_logits
    (n, K). Implements derivations/mixture.md (GM.6).
    """
    x = _validate_x(model, x)
    q_logits = _check_q_logits(model, x, q_logits)
    # (GM.6)  ELBO_i = sum_k q_ik log p(x_i, z=k) + H(q_i)
    cross = _expected_log_joint(categorical.softmax(q_logits), _log_joint(model, x))
    return cross + categorical.entropy(q_logits)


def elbo_and_grad(model, x, q_logits, dout=None):
    """ELBO(q) (n,) and the gradients of sum_i dout_i ELBO_i.

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Implements derivations/mixture.md (GM.6) and its gradients (GM.9)-(GM.14):
    w.r.t. the model, the auxiliary-sum gradients with g_ik = dout_i q_ik;
    w.r.t. q's logits, dout_i q_ik (log p(x_i, z=k) - E_q[log p(x_i, z)])
    plus the entropy gradient of refvi.categorical.

    Returns
    -------
    value : ndarray, shape (n,)
    grads : dict
        ``"logits"``, ``"means"``, ``"L"`` or ``"std"`` (model) and
        ``"q_logits"`` (n, K).
    """
    x = _validate_x(model, x)
    q_logits = _check_q_logits(model, x, q_logits)
    dout = check_dout(dout, x.shape[0])
    lj = _log_joint(model, x)
    q = categorical.softmax(q_logits)
    # (GM.6)  ELBO_i = sum_k q_ik log p(x_i, z=k) + H(q_i)
    cross = _expected_log_joint(q, lj)
    H, dH = categorical.entropy_and_grad(q_logits, dout)
    grads = _grads(model, x, dout[:, None] * q)
    # (GM.14)  d cross_i / d q_logits_ik = q_ik (log p(x_i, z=k) - cross_i)
    # (a component with q_ik = 0 contributes 0, also where log p(x_i, z=k) = -inf)
    dev = np.subtract(lj, cross[:, None], out=np.zeros_like(lj), where=q > 0)
    dcross = q * dev
    grads["q_logits"] = dout[:, None] * dcross + dH["logits"]
    return cross + H, grads


def kl_to_posterior(model, x, q_logits):
    """KL(q_i || p(z | x_i)) per datum, shape (n,); 0 at q = responsibilities.

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Implements derivations/mixture.md (GM.7), computed as the categorical KL
    between q and softmax(log p(x_i, z)) = p(z | x_i), not as a difference
    log p(x) - ELBO. Every weight must be positive.
    """
    x = _validate_x(model, x)
    q_logits = _check_q_logits(model, x, q_logits)
    _check_weights_positive(model)
    return categorical.kl(q_logits, _log_joint(model, x))


def kl_to_posterior_and_grad(model, x, q_logits, dout=None):
    """KL(q_i || p(z | x_i)) (n,) and the gradients of sum_i dout_i KL_i.

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Implements derivations/mixture.md (GM.7) and (GM.15): the posterior's
    logits are log p(x_i, z=k), whose gradient r_ik - q_ik (refvi.categorical)
    weights the auxiliary-sum gradients.

    Returns
    -------
    value : ndarray, shape (n,)
    grads : dict
        ``"logits"``, ``"means"``, ``"L"`` or ``"std"`` (model) and
        ``"q_logits"`` (n, K).
    """
    x = _validate_x(model, x)
    q_logits = _check_q_logits(model, x, q_logits)
    dout = check_dout(dout, x.shape[0])
    _check_weights_positive(model)
    lj = _log_joint(model, x)
    value, g = categorical.kl_and_grad(q_logits, lj, dout)
    grads = _grads(model, x, g["logits_p"])
    grads["q_logits"] = g["logits_q"]
    return value, grads
