"""Exact EM for the Gaussian mixture of :mod:`refvi.models.mixture`.

One EM iteration is ONE pass over the data in row blocks
(derivations/mixture.md (GM.16)-(GM.22)): for each block, the joint
log-densities of all K components from the residuals x_i - mu_k whitened by
one stacked product (:func:`refvi.models.mixture._whiten_block`), log p(x)
by log-sum-exp, the responsibilities r, and their sufficient statistics
N_k = sum_i r_ik, s_k = sum_i r_ik x_i and the second moments
S_k = sum_i r_ik x_i x_i^T (per type: full (K, d, d), tied the r-free total
(d, d), diag/spherical the diagonals (K, d)). The M-step and
the ELBO F(q, theta) are closed forms of those statistics, so the pass that
evaluates log p(x; theta_t) is also the E-step of iteration t, and no
(n, K) array is ever held. For the statistics, data are shifted before any
product, which keeps the moment formula Sigma_k = S_k / N_k - mu_k mu_k^T
free of cancellation for data far from the origin: for full covariances by
each component's current mean mu_k (the residuals x_i - mu_k the E-step has
just formed, so S_k is the scatter about a point near the new mean; given
responsibilities, :func:`m_step` first computes the new means and shifts by
them), for the other types by the data mean.

Regularisation: ``reg_covar`` (default 1e-6, as scikit-learn) is added to
the diagonal of every covariance in the M-step (to the variances for diag
and spherical). That M-step maximises the auxiliary function Q of
:func:`auxiliary` including its penalty -reg_covar/2 sum_k N_k tr Sigma_k^{-1}
(derivations/mixture.md (GM.23)). Because that penalty is not part of
log p(x), EM is guaranteed monotone in log p(x) only for ``reg_covar=0``; with
the floor, a component whose variance is near ``reg_covar`` can lower log p(x)
by about reg_covar * N_k tr Sigma_k^{-1}, and ``run_em`` flags such steps.

``reg_covar`` is absolute, in the squared units of the data (as in
scikit-learn), so its effect depends on the data's scale: for data in small
units (column variances of 1e-8, say) the default 1e-6 swamps every
covariance and EM collapses the means onto the data centre. :func:`em`,
:func:`m_step` and :func:`kmeans_plusplus_init` therefore warn
(:class:`RegCovarWarning`) when ``reg_covar`` exceeds ``REG_COVAR_WARN_REL``
times the smallest non-zero column variance of x; pass a ``reg_covar``
scaled to the data (e.g. 1e-6 times that variance) to silence it.

Emptied components: a component whose total responsibility N_k is at most
n * eps (eps = 2^-52, i.e. lost in the rounding of sum_k N_k = n) keeps its
previous mean and covariance; its weight is N_k / n like every other weight
(so the weights still sum to one). It is reported in ``trace.empty`` and by a
:class:`EmptyComponentWarning`.
"""

import warnings
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
from scipy import linalg

from refvi._validate import (
    as_data,
    as_float_array,
    check_float,
    check_int,
    check_rng,
)
from refvi.gaussian import LOG_2PI
from refvi.models.em import DEFAULT_MAX_ITER, DEFAULT_TOL, EMTrace, run_em
from refvi.models.mixture import (
    GaussianMixture,
    _blocks,
    _check_covariance_type,
    _check_model,
    _grads,
    _log_density_block,
    _prepare,
    _scale,
    _validate_x,
    log_joint,
    responsibilities,
)

__all__ = [
    "REG_COVAR_WARN_REL",
    "EmptyComponentWarning",
    "RegCovarWarning",
    "MixtureEMTrace",
    "auxiliary",
    "auxiliary_and_grad",
    "e_step",
    "em",
    "kmeans_plusplus_init",
    "m_step",
]


#: :class:`RegCovarWarning` when reg_covar > this times the smallest non-zero
#: column variance of the data.
REG_COVAR_WARN_REL = 0.1


class RegCovarWarning(UserWarning):
    """reg_covar is not small against the data's variances: it dominates the fit."""


def _warn_if_reg_dominates(x, reg_covar):
    """Warn when reg_covar > REG_COVAR_WARN_REL * min non-zero column variance."""
    var = x.var(axis=0)
    var = var[var > 0]
    if var.size and reg_covar > REG_COVAR_WARN_REL * var.min():
        warnings.warn(
            f"reg_covar = {reg_covar:g} is more than {REG_COVAR_WARN_REL:g} times "
            f"the smallest column variance of x ({var.min():.3g}): it dominates "
            "the fitted covariances; scale reg_covar to the data",
            RegCovarWarning,
            stacklevel=3,
        )


class EmptyComponentWarning(UserWarning):
    """An EM iteration left a component with no responsibility (kept as it was)."""


@dataclass(frozen=True)
class MixtureEMTrace(EMTrace):
    """:class:`refvi.models.em.EMTrace` plus the emptied components.

    Attributes
    ----------
    empty : ndarray of bool, shape (T, K)
        ``empty[t, k]``: component k had N_k <= n eps in iteration t and kept
        its previous mean and covariance.
    """

    empty: np.ndarray


class _Stats(NamedTuple):
    """Sufficient statistics of responsibilities r for a mixture's M-step.

    The data are shifted by ``shift``: (K, d), one point per component, for
    full covariances (s_k and S_k are moments of x_i - shift_k), else (d,).
    ``model`` is theta_t, the parameters r came from (None when r was given
    directly); ``log_lik`` = log p(x; theta_t) and ``entropy`` =
    sum_i H(r_i) are totals (nan when r was given directly: then neither is
    known).
    """

    model: object
    covariance_type: str
    n: int
    shift: np.ndarray
    N: np.ndarray
    s: np.ndarray
    S: np.ndarray
    log_lik: float
    entropy: float


def _zero_second_moment(covariance_type, K, d):
    if covariance_type == "full":
        return np.zeros((K, d, d))
    if covariance_type == "tied":
        return np.zeros((d, d))
    return np.zeros((K, d))


def _accumulate(covariance_type, xb, shift, r, s, S, R, Y):
    """Add one block's s and S to ``s``, ``S`` in place (private buffers); (GM.18).

    ``r`` (K, b) are the block's responsibilities, ``shift`` as in
    :class:`_Stats`, ``R`` and ``Y`` (K, b, d) work buffers; for full
    covariances ``R`` must already hold the residuals xb_i - shift_k (the
    E-step's, or :func:`_stats_of`'s). No checking.
    """
    if covariance_type == "full":
        # s_k += sum_i r_ik R_ik
        s += np.matmul(r[:, None, :], R)[:, 0]
        # (GM.18)  S_k += sum_i r_ik R_ik R_ik^T = (r_k * R_k)^T R_k: K products
        # (d, b) @ (b, d) in one call
        Z = np.multiply(R, r[:, :, None], out=Y)
        S += np.matmul(np.swapaxes(Z, 1, 2), R)
        return
    xs = np.subtract(xb, shift, out=R[0])
    s += r @ xs
    if covariance_type == "tied":
        S += xs.T @ xs
    else:
        S += r @ np.multiply(xs, xs, out=Y[0])


def _e_pass(model, x, shift):
    """One pass over ``x``: log p(x), the entropy and sufficient statistics of r.

    ``shift`` (d,) is the data shift of the tied, diag and spherical
    statistics; full statistics are taken about the component means (module
    docstring). No argument checking. Implements derivations/mixture.md
    (GM.4), (GM.5), (GM.17)-(GM.18) block by block.
    """
    ctype = model.covariance_type
    K, d = model.n_components, model.d
    prep = _prepare(model)
    if ctype == "full":
        shift = model.means
    N, s = np.zeros(K), np.zeros((K, d))
    S = _zero_second_moment(ctype, K, d)
    log_lik = entropy = 0.0
    for _, xb, R, Y, lj in _blocks(x, K, prep.means):
        # R holds the residuals xb_i - mu_k (whitened here; the full
        # statistics of _accumulate are moments of them)
        _log_density_block(prep, R, Y, lj, joint=True)
        # (GM.4)-(GM.5)  log-sum-exp with the maximum over k factored out:
        # D_ik = log p(x_i, z=k) - max_k, r_ik = exp(D_ik) / total_i
        top = lj.max(axis=0)
        D = np.subtract(lj, top, out=lj)
        r = np.exp(D)
        total = r.sum(axis=0)
        r /= total
        log_total = np.log(total)
        log_lik += float(np.sum(top) + np.sum(log_total))
        # H(r_i) = -sum_k r_ik log r_ik = log total_i - sum_k r_ik D_ik (rows
        # of r sum to one): two non-negative terms; 0 log 0 = 0 where r_ik = 0
        np.copyto(D, 0.0, where=r == 0)
        entropy += float(np.sum(log_total) - np.einsum("kb,kb->", r, D))
        N += r.sum(axis=1)
        _accumulate(ctype, xb, shift, r, s, S, R, Y)
    return _Stats(model, ctype, x.shape[0], shift, N, s, S, log_lik, entropy)


def _stats_of(x, r, covariance_type):
    """Sufficient statistics of given responsibilities r (n, K). No checking.

    Tied, diag and spherical statistics are shifted by the data mean xbar;
    full ones by each component's own mean, computed first as
    xbar + sum_i r_ik (x_i - xbar) / N_k (xbar for N_k = 0), so that S_k is
    the scatter about a point within rounding of the new mean.
    """
    K, d = r.shape[1], x.shape[1]
    N, xbar = r.sum(axis=0), x.mean(axis=0)
    shift = xbar
    if covariance_type == "full":
        # (GM.20)  mu_k = xbar + s_k / N_k, s_k the first moment about xbar
        s = r.T @ (x - xbar)
        shift = xbar + s / np.where(N > 0, N, 1.0)[:, None]
    s, S = np.zeros((K, d)), _zero_second_moment(covariance_type, K, d)
    # full: R holds the residuals xb_i - shift_k
    means = shift if covariance_type == "full" else None
    for rows, xb, R, Y, r_b in _blocks(x, K, means):
        r_b[...] = r[rows].T
        _accumulate(covariance_type, xb, shift, r_b, s, S, R, Y)
    nan = float("nan")
    return _Stats(None, covariance_type, x.shape[0], shift, N, s, S, nan, nan)


def _empty_components(stats):
    """Components with N_k <= n eps: their responsibility is lost in rounding."""
    return stats.N <= stats.n * np.finfo(float).eps


def _m_step_stats(stats, reg_covar):
    """theta_{t+1} = argmax Q from sufficient statistics; (GM.19)-(GM.22).

    No argument checking. Emptied components keep the parameters of
    ``stats.model`` (module docstring).
    """
    ctype, n, N, shift = stats.covariance_type, stats.n, stats.N, stats.shift
    K, d = stats.s.shape
    empty = _empty_components(stats)
    if np.any(empty) and stats.model is None:
        raise ValueError(
            f"r gives components {np.flatnonzero(empty).tolist()} no responsibility "
            "and previous is None: there are no previous parameters to keep"
        )
    N_safe = np.where(empty, 1.0, N)
    # (GM.19)  pi_k = N_k / n,  (GM.20)  mu_k = s_k / N_k  (shifted coordinates)
    weights = N / n
    mu = stats.s / N_safe[:, None]
    if ctype == "full":
        # (GM.21)  Sigma_k = S_k / N_k - mu_k mu_k^T + reg_covar I
        Sigma = stats.S / N_safe[:, None, None] - mu[:, :, None] * mu[:, None, :]
        Sigma = 0.5 * (Sigma + np.swapaxes(Sigma, 1, 2))
        Sigma[:, np.arange(d), np.arange(d)] += reg_covar
    elif ctype == "tied":
        # (GM.21)  Sigma = (S - sum_k N_k mu_k mu_k^T) / n + reg_covar I
        Sigma = (stats.S - (N[:, None] * mu).T @ mu) / n
        Sigma = 0.5 * (Sigma + Sigma.T)
        Sigma[np.arange(d), np.arange(d)] += reg_covar
    else:
        # (GM.22)  variances S_kj / N_k - mu_kj^2 + reg_covar; spherical: their mean
        var = stats.S / N_safe[:, None] - mu**2 + reg_covar
        if ctype == "spherical":
            var = var.mean(axis=1)
    means = mu + shift
    if ctype in ("full", "tied"):
        scale = _cholesky_or_raise(Sigma, ctype, reg_covar)
    else:
        if np.any(var[~empty] <= 0):
            raise ValueError(
                f"an M-step variance is not positive (min {var[~empty].min():.3g}); "
                "increase reg_covar"
            )
        keep = empty if ctype == "spherical" else empty[:, None]
        scale = np.sqrt(np.where(keep, 1.0, var))  # the standard deviations
    if np.any(empty):
        prev = stats.model
        means[empty] = prev.means[empty]
        if ctype != "tied":
            scale[empty] = _scale(prev)[empty]
    if ctype in ("full", "tied"):
        return GaussianMixture(weights, means, scale, ctype)
    return GaussianMixture(weights, means, None, ctype, std=scale)


def _cholesky_or_raise(Sigma, covariance_type, reg_covar):
    try:
        return np.linalg.cholesky(Sigma)
    except np.linalg.LinAlgError:
        eig = np.linalg.eigvalsh(Sigma)
        bad = np.flatnonzero(eig.reshape(-1, eig.shape[-1]).min(axis=-1) <= 0)
        raise ValueError(
            f"the M-step covariance{'s' if covariance_type == 'full' else ''} "
            f"{bad.tolist() if covariance_type == 'full' else ''} not positive "
            f"definite (smallest eigenvalue {eig.min():.3g}); increase reg_covar "
            f"(now {reg_covar:g})"
        ) from None


def _elbo_stats(model, stats):
    """F(q, theta) summed over the data, from q's sufficient statistics; (GM.17).

    F = sum_k [N_k log pi_k - N_k/2 (d log 2 pi + log det Sigma_k)
    - 1/2 tr(Sigma_k^{-1} C_k)] + sum_i H(q_i), with the scatter
    C_k = sum_i q_ik (x_i - mu_k)(x_i - mu_k)^T = S_k - s_k m^T - m s_k^T + N_k m m^T
    about m = mu_k - shift. No argument checking.
    """
    prep = _prepare(model)
    N, s, S = stats.N, stats.s, stats.S
    d = model.d
    m = model.means - stats.shift
    ctype = model.covariance_type
    if ctype in ("full", "tied"):
        sm = np.einsum("ki,kj->kij", s, m)
        C = (
            -sm
            - np.swapaxes(sm, 1, 2)
            + N[:, None, None] * np.einsum("ki,kj->kij", m, m)
        )
        if ctype == "full":
            C += S
            P = prep.P
        else:
            # (GM.17)  one shared Sigma: only sum_k C_k enters, S is that sum's moment
            C = (S + C.sum(axis=0))[None]
            P = prep.P[None]
        # tr(Sigma^{-1} C) = tr(P^T C P) with P = L^{-T}
        trace = float(np.einsum("kij,kil,klj->", P, C, P))
    else:
        C = S - 2.0 * s * m + N[:, None] * m**2
        trace = float(np.sum(C * prep.P**2))
    pos = N > 0  # an emptied component (N_k = 0, maybe log pi_k = -inf) adds 0
    value = float(np.sum(N[pos] * model.log_weights[pos]))
    value -= 0.5 * float(np.sum(np.where(N > 0, N * (d * LOG_2PI + prep.logdet), 0)))
    return value - 0.5 * trace + stats.entropy


# --------------------------------------------------------------------------
# Public: E-step, M-step, the auxiliary function, EM, k-means++.
# --------------------------------------------------------------------------


def e_step(x, model):
    """The E-step: responsibilities r_ik = p(z=k | x_i; theta), shape (n, K).

    Implements derivations/mixture.md (GM.5) (same as
    :func:`refvi.models.mixture.responsibilities`).
    """
    return responsibilities(model, x)


#: Rows of given responsibilities must sum to one within this tolerance (float32
#: responsibilities do); they are then renormalised in float64.
R_SUM_TOL = 1e-6


def _check_r(r, n, K=None):
    """Responsibilities (n, K): non-negative rows summing to one, renormalised."""
    r = as_float_array(r, "r", ndim=2, shape=(n, K))
    if np.any(r < 0):
        raise ValueError(f"r must be non-negative; got min {r.min():.3g}")
    total = r.sum(axis=1, keepdims=True)
    worst = float(np.max(np.abs(total - 1.0)))
    if worst > R_SUM_TOL:
        raise ValueError(
            f"r must have rows summing to one (within {R_SUM_TOL:g}); a row sums "
            f"to {float(total.flat[np.argmax(np.abs(total - 1.0))])!r}"
        )
    return r / total


def _check_reg_covar(reg_covar):
    return check_float(reg_covar, "reg_covar", minimum=0.0)


def _check_previous(previous, K, d, covariance_type):
    """``previous`` (None or a mixture of the M-step's K, d and covariance type)."""
    if previous is None:
        return None
    _check_model(previous, "previous")
    if previous.means.shape != (K, d) or previous.covariance_type != covariance_type:
        raise ValueError(
            f"previous must have K = {K} components in d = {d} (from r and x) and "
            f"covariance_type {covariance_type!r}; got means of shape "
            f"{previous.means.shape} and {previous.covariance_type!r}"
        )
    return previous


def m_step(x, r, covariance_type, reg_covar=1e-6, previous=None):
    """The M-step: argmax_theta of the auxiliary function Q(theta; r).

    Implements derivations/mixture.md (GM.19)-(GM.22): pi_k = N_k / n,
    mu_k = s_k / N_k, Sigma_k = (weighted scatter about mu_k) / N_k +
    reg_covar I (tied: pooled over k; diag: its diagonal; spherical: the mean
    of that diagonal).

    Parameters
    ----------
    x : array_like, shape (n, d)
    r : array_like, shape (n, K)
        Responsibilities: non-negative, rows summing to one within
        ``R_SUM_TOL`` (float32 responsibilities do), renormalised in float64.
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        Added to every variance (default 1e-6, as scikit-learn; absolute, see
        the module docstring and :class:`RegCovarWarning`).
    previous : GaussianMixture, optional
        Parameters kept by components with N_k <= n eps; without it such a
        component raises ValueError.

    Returns
    -------
    GaussianMixture
    """
    _check_covariance_type(covariance_type)
    x = as_data(x)
    r = _check_r(r, x.shape[0])
    reg = _check_reg_covar(reg_covar)
    previous = _check_previous(previous, r.shape[1], x.shape[1], covariance_type)
    _warn_if_reg_dominates(x, reg)
    stats = _stats_of(x, r, covariance_type)
    return _m_step_stats(stats._replace(model=previous), reg)


def auxiliary(model, x, r, reg_covar=0.0):
    """The EM auxiliary function Q(theta; r) (a float); (GM.23).

    Q = sum_ik r_ik log p(x_i, z=k; theta) - reg_covar / 2 sum_k N_k tr Sigma_k^{-1},
    N_k = sum_i r_ik. The M-step is its maximiser, so its gradient vanishes
    there (the stationarity check of EM).
    """
    return auxiliary_and_grad(model, x, r, reg_covar)[0]


def auxiliary_and_grad(model, x, r, reg_covar=0.0):
    """Q(theta; r) (float) and its gradients w.r.t. logits, means and L or std; (GM.23).

    The log-joint part has the auxiliary-sum gradients with g_ik = r_ik
    (GM.9)-(GM.13); the penalty -reg/2 N_k tr Sigma_k^{-1} has
    d/dL_k = reg N_k tril(L_k^{-T} L_k^{-1} L_k^{-T}) (full, tied with N
    summed), d/ds_kj = reg N_k / s_kj^3 (diag) and
    d/ds_k = reg N_k d / s_k^3 (spherical) (GM.24).

    Returns
    -------
    value : float
    grads : dict
        ``"logits"``, ``"means"``, ``"L"`` (full, tied) or ``"std"`` (diag,
        spherical).
    """
    x = _validate_x(model, x)
    r = _check_r(r, x.shape[0], model.n_components)
    reg = _check_reg_covar(reg_covar)
    lj = log_joint(model, x)
    value = float(np.sum(np.where(r > 0, r * lj, 0.0)))
    grads = _grads(model, x, r)
    N = r.sum(axis=0)
    L, s, d, ctype = model.L, model.std, model.d, model.covariance_type
    if ctype in ("full", "tied"):
        eye = np.broadcast_to(np.eye(d), L.shape)
        inv_L = linalg.solve_triangular(L, eye, lower=True)
        weight = N if ctype == "full" else N.sum()
        inv_L_T = np.swapaxes(inv_L, -1, -2)
        # (GM.24)  tr Sigma^{-1} = |L^{-1}|_F^2
        tr = np.sum(inv_L**2, axis=(-2, -1))
        value -= 0.5 * reg * float(np.sum(weight * tr))
        grads["L"] = grads["L"] + reg * np.asarray(weight)[..., None, None] * np.tril(
            inv_L_T @ inv_L @ inv_L_T
        )
    elif ctype == "diag":
        value -= 0.5 * reg * float(np.sum(N[:, None] / s**2))
        grads["std"] = grads["std"] + reg * N[:, None] / s**3
    else:
        value -= 0.5 * reg * float(np.sum(N * d / s**2))
        grads["std"] = grads["std"] + reg * N * d / s**3
    return value, grads


def kmeans_plusplus_init(x, n_components, covariance_type, rng, reg_covar=1e-6):
    """Initial parameters by k-means++ seeding, then one M-step.

    Centres are drawn by D^2 sampling (Arthur & Vassilvitskii 2007): the
    first uniformly among the rows of x, each next one with probability
    proportional to the squared distance to the nearest centre chosen so far.
    Every row is then assigned to its nearest centre and the parameters are
    the M-step of that hard assignment (:func:`m_step`).

    Raises ValueError when n_components > n or when x has fewer distinct rows
    than n_components.
    """
    _check_covariance_type(covariance_type)
    x = as_data(x)
    n = x.shape[0]
    K = check_int(n_components, "n_components", minimum=1)
    if K > n:
        raise ValueError(
            f"n_components must be <= the number of data points n = {n}; got {K}"
        )
    check_rng(rng)
    centres = [int(rng.integers(n))]
    d2 = np.sum((x - x[centres[0]]) ** 2, axis=1)
    for _ in range(1, K):
        total = d2.sum()
        if total <= 0:
            raise ValueError(
                f"x has fewer than n_components = {K} distinct rows; cannot seed"
            )
        nxt = int(rng.choice(n, p=d2 / total))
        centres.append(nxt)
        d2 = np.minimum(d2, np.sum((x - x[nxt]) ** 2, axis=1))
    C = x[centres]
    # squared distances to every centre, (n, K), without forming x - c per row
    dist = np.sum(x**2, axis=1)[:, None] - 2.0 * x @ C.T + np.sum(C**2, axis=1)
    dist[centres, np.arange(K)] = -np.inf  # each centre is its own nearest
    r = np.zeros((n, K))
    r[np.arange(n), np.argmin(dist, axis=1)] = 1.0
    return m_step(x, r, covariance_type, reg_covar)


def em(x, init, *, reg_covar=1e-6, tol=DEFAULT_TOL, max_iter=DEFAULT_MAX_ITER):
    """Exact EM from the parameters ``init``; returns (model, MixtureEMTrace).

    Each iteration is one blocked pass over x (module docstring) driven by
    :func:`refvi.models.em.run_em`: the trace holds log p(x; theta_t), the
    ELBO after each E- and M-step, the KL gap, the decrease flags
    (EMDecreaseWarning) and, per iteration, the emptied components
    (EmptyComponentWarning).

    Parameters
    ----------
    x : array_like, shape (n, d)
    init : GaussianMixture
        theta_0 (use :func:`kmeans_plusplus_init` for a seeded start).
    reg_covar : float
        Added to every variance in the M-step (default 1e-6, as scikit-learn;
        absolute: a :class:`RegCovarWarning` when it dominates the data's
        variances, see the module docstring).
    tol : float
        Stop when an iteration raises log p(x) / n by no more than ``tol``.
    max_iter : int

    Returns
    -------
    model : GaussianMixture
    trace : MixtureEMTrace
    """
    _check_model(init, "init")
    x = _validate_x(init, x)
    if init.n_components > x.shape[0]:
        raise ValueError(
            f"init has n_components = {init.n_components} > n = {x.shape[0]} "
            "data points"
        )
    reg = _check_reg_covar(reg_covar)
    _warn_if_reg_dominates(x, reg)
    shift = x.mean(axis=0)
    empty = []

    def e_step_(model):
        stats = _e_pass(model, x, shift)
        return stats, stats.log_lik

    def m_step_(stats):
        flags = _empty_components(stats)
        empty.append(flags)
        if np.any(flags):
            warnings.warn(
                f"EM iteration {len(empty)}: components "
                f"{np.flatnonzero(flags).tolist()} have no responsibility; "
                "kept at their previous parameters",
                EmptyComponentWarning,
                stacklevel=3,
            )
        return _m_step_stats(stats, reg)

    model, trace = run_em(
        init,
        e_step=e_step_,
        m_step=m_step_,
        elbo=_elbo_stats,
        n=x.shape[0],
        tol=tol,
        max_iter=max_iter,
    )
    K = init.n_components
    flags = np.array(empty, dtype=bool).reshape(-1, K)
    base = {f.name: getattr(trace, f.name) for f in fields(EMTrace)}
    return model, MixtureEMTrace(**base, empty=flags)
