"""Exact EM for factor analysis and probabilistic PCA, and the closed-form pPCA MLE.

EM for z ~ N(0, I), x | z ~ N(W z + mu, diag(psi)) (``refvi.models.linear_gaussian``)
needs the data only through its sufficient statistics: the sample mean
``xbar`` and covariance ``Sigma_hat`` (computed once, O(n d^2)). Every
iteration then costs O(d^2 k + d k^2), independent of n:

- E-step: the posteriors q_i = N(A (x_i - mu), S), A = S W^T Psi^{-1}, enter
  the M-step and the ELBO only through the means over the data of m_i,
  (x_i - xbar)(m_i - mbar)^T and (m_i - mbar)(m_i - mbar)^T (``ExpectedStats``),
  which are A (xbar - mu), Sigma_hat A^T and A Sigma_hat A^T (LG.20);
- M-step: the joint maximiser of the EM auxiliary function over (W, mu, psi)
  (LG.21)-(LG.23), with psi kept isotropic for pPCA (LG.24);
- log p(x) of the whole data set from (xbar, Sigma_hat) (LG.19).

The per-datum route (``e_step(x, model)`` -> ``Posterior``, ``m_step(x, post)``)
computes the same statistics from the posterior means themselves; tests check
the two routes agree. The EM loop is ``refvi.models.em.run_em``.

Noise floor
-----------
Each M-step returns ``psi = max(psi_M, psi_floor)``. Since the optimal (W, mu)
do not depend on psi (LG.22), this is the exact maximiser of the auxiliary
function over psi >= psi_floor, so EM stays monotone. Its default is
``PSI_FLOOR_REL * mean_j Sigma_hat_jj``: a constant column then gets noise
variance psi_floor instead of 0 (which would make C singular and give NaN).
"""

from typing import NamedTuple

import numpy as np
from scipy.linalg import cho_solve, eigh, lapack

from refvi._validate import (
    as_data,
    check_int,
    check_lower_cholesky,
    check_positive,
    check_record,
    cholesky_of_spd,
)
from refvi.gaussian import LOG_2PI, _entropy_from_logdet, _logdet_chol
from refvi.models.em import DEFAULT_MAX_ITER, DEFAULT_TOL, run_em
from refvi.models.linear_gaussian import (
    LinearGaussian,
    Posterior,
    _augmented_qr,
    _check_model,
    _logdet_C_qr,
    _posterior_cov,
    _whitened_residuals,
    posterior,
)

__all__ = [
    "NOISE_MODELS",
    "PSI_FLOOR_REL",
    "SufficientStats",
    "ExpectedStats",
    "sufficient_stats",
    "log_marginal_total",
    "e_step",
    "expected_stats",
    "expected_stats_from_posterior",
    "elbo_total",
    "m_step",
    "m_step_from_stats",
    "em",
    "em_from_stats",
    "ppca_mle",
    "ppca_mle_from_stats",
]

#: Default noise floor, relative to the mean variance of the data's columns.
PSI_FLOOR_REL = 1e-6

NOISE_MODELS = ("diag", "isotropic")


class SufficientStats(NamedTuple):
    """Sufficient statistics of data x (n, d) for the linear-Gaussian model.

    Attributes
    ----------
    n : int
        Number of data points.
    xbar : ndarray, shape (d,)
        Sample mean.
    Sigma_hat : ndarray, shape (d, d)
        Sample covariance (1/n) sum_i (x_i - xbar)(x_i - xbar)^T.
    """

    n: int
    xbar: np.ndarray
    Sigma_hat: np.ndarray


class ExpectedStats(NamedTuple):
    """What the M-step and the ELBO need of q_i = N(m_i, S) and the data (LG.20).

    Attributes
    ----------
    n : int
    xbar : ndarray, shape (d,)
        Sample mean of x.
    var_x : ndarray, shape (d,)
        Sample variances of x (the diagonal of Sigma_hat).
    mbar : ndarray, shape (k,)
        Mean of the m_i.
    C_xm : ndarray, shape (d, k)
        (1/n) sum_i (x_i - xbar)(m_i - mbar)^T.
    C_mm : ndarray, shape (k, k)
        (1/n) sum_i (m_i - mbar)(m_i - mbar)^T.
    S : ndarray, shape (k, k)
        The covariance shared by every q_i.
    L_S : ndarray, shape (k, k)
        Lower Cholesky factor of S.
    """

    n: int
    xbar: np.ndarray
    var_x: np.ndarray
    mbar: np.ndarray
    C_xm: np.ndarray
    C_mm: np.ndarray
    S: np.ndarray
    L_S: np.ndarray


# ---------------------------------------------------------------------------
# Sufficient statistics and the data set's log-likelihood.


def sufficient_stats(x):
    """Sample mean and covariance of ``x`` (n, d): one O(n d^2) pass."""
    x = as_data(x)
    xbar = x.mean(axis=0)
    y = x - xbar
    return SufficientStats(x.shape[0], xbar, y.T @ y / x.shape[0])


def _check_variances(var, name):
    if np.any(var < 0):
        raise ValueError(f"{name} must be non-negative; got min {var.min():.3g}")


def _check_stats(stats, model=None):
    """``stats`` as checked SufficientStats (of the model's d when given)."""
    sizes = None if model is None else {"d": model.d}
    fields = {"n": "count", "xbar": ("d",), "Sigma_hat": ("d", "d")}
    stats = check_record(stats, SufficientStats, "stats", fields, sizes)
    _check_variances(np.diag(stats.Sigma_hat), "the diagonal of stats.Sigma_hat")
    return stats


def _check_estats(estats, model=None):
    """``estats`` as checked ExpectedStats (of the model's d and k when given)."""
    sizes = None if model is None else {"d": model.d, "k": model.k}
    fields = {"n": "count", "xbar": ("d",), "var_x": ("d",), "mbar": ("k",)}
    fields |= {"C_xm": ("d", "k"), "C_mm": ("k", "k"), "S": ("k", "k")}
    fields["L_S"] = ("k", "k")
    estats = check_record(estats, ExpectedStats, "estats", fields, sizes)
    _check_variances(estats.var_x, "estats.var_x")
    check_lower_cholesky(estats.L_S, "estats.L_S")
    return estats


def _check_post(post, n):
    """``post`` as a checked Posterior with one row of ``m`` per data point."""
    fields = {"m": (n, "k"), "S": ("k", "k"), "L_S": ("k", "k")}
    post = check_record(post, Posterior, "post", fields)
    check_lower_cholesky(post.L_S, "post.L_S")
    return post


def _psd_root(Sigma_hat):
    """R (d, r) with R R^T = Sigma_hat, by pivoted Cholesky (LAPACK dpstrf).

    No argument checking. r is the numerical rank, so a singular sample
    covariance (n <= d, a constant column) is fine. The factor is invariant to
    scaling the coordinates, so a graded Sigma_hat keeps its small entries.
    """
    c, piv, rank, _ = lapack.dpstrf(Sigma_hat, lower=1)
    R = np.zeros((Sigma_hat.shape[0], rank))
    R[piv - 1] = np.tril(c)[:, :rank]
    return R


def log_marginal_total(model, stats):
    """sum_i log N(x_i; mu, C) from the sufficient statistics; (LG.19).

        -n/2 [d log 2 pi + log det C + tr(C^{-1} Sigma_hat) + delta^T C^{-1} delta],

    delta = xbar - mu, with det C by the determinant lemma and the two
    quadratic terms as in (LG.7): delta^T C^{-1} delta directly and the trace
    from a pivoted-Cholesky root R of Sigma_hat as |Psi^{-1/2}(R - W A R)|_F^2
    + |A R|_F^2 (A = S W^T Psi^{-1}), sums of squares without cancellation:
    O(d^3). Equals ``log_marginal(model, x).sum()``.

    Accuracy: within eps times the condition number
    kappa = sum_ij |(C^{-1})_ij Sigma_hat_ij| / |tr(C^{-1} Sigma_hat)| of the
    trace (large when some psi_j is tiny: then Sigma_hat's rounding alone moves
    the value by that much); see docs/accuracy.md.
    """
    _check_model(model)
    stats = _check_stats(stats, model)
    # (LG.19)  with Sigma_hat = R R^T:  tr(C^{-1} Sigma_hat)
    #            = |Psi^{-1/2}(R - W A R)|_F^2 + |A R|_F^2,   A = S W^T Psi^{-1},
    # the per-datum (LG.7) summed over the columns of R: a sum of squares, not
    # tr(Psi^{-1} Sigma_hat) minus a Woodbury correction (two numbers of size
    # 1/psi that cancel)
    aq = _augmented_qr(model.W, model.psi)
    u, AR = _whitened_residuals(aq, _psd_root(stats.Sigma_hat).T)
    tr = np.sum(u * u) + np.sum(AR * AR)
    # (LG.7)  delta^T C^{-1} delta = |Psi^{-1/2}(delta - W m)|^2 + |m|^2
    u, m = _whitened_residuals(aq, (stats.xbar - model.mu)[None, :])
    quad = np.sum(u * u) + np.sum(m * m)
    d = model.d
    return float(-0.5 * stats.n * (d * LOG_2PI + _logdet_C_qr(aq) + tr + quad))


# ---------------------------------------------------------------------------
# E-step: two routes to the same ExpectedStats.


def e_step(x, model):
    """E-step: the exact posteriors q_i = p(z | x_i) = N(m_i, S); (LG.18)."""
    return posterior(model, x)


def expected_stats(model, stats):
    """E-step from the sufficient statistics, O(d^2 k + d k^2); (LG.20).

    With A = S W^T Psi^{-1}:  mbar = A (xbar - mu),  C_xm = Sigma_hat A^T,
    C_mm = A Sigma_hat A^T, for q_i the posterior under ``model``.
    """
    _check_model(model)
    stats = _check_stats(stats, model)
    aq = _augmented_qr(model.W, model.psi)
    # A^T = Psi^{-1} W S, (d, k): row j is the posterior mean of the residual
    # e_j, from the QR (no normal equations; see linear_gaussian.posterior)
    At = _whitened_residuals(aq, np.eye(model.d))[1]
    S, L_S = _posterior_cov(aq)
    C_xm = stats.Sigma_hat @ At
    C_mm = At.T @ C_xm
    return ExpectedStats(
        n=stats.n,
        xbar=stats.xbar,
        var_x=np.diag(stats.Sigma_hat).copy(),
        mbar=(stats.xbar - model.mu) @ At,
        C_xm=C_xm,
        C_mm=0.5 * (C_mm + C_mm.T),
        S=S,
        L_S=L_S,
    )


def expected_stats_from_posterior(x, post):
    """The same ExpectedStats from the data and the posterior means, O(n d k)."""
    x = as_data(x)
    n = x.shape[0]
    post = _check_post(post, n)
    xbar, mbar = x.mean(axis=0), post.m.mean(axis=0)
    y, dm = x - xbar, post.m - mbar
    return ExpectedStats(
        n=n,
        xbar=xbar,
        var_x=np.einsum("ij,ij->j", y, y) / n,
        mbar=mbar,
        C_xm=y.T @ dm / n,
        C_mm=dm.T @ dm / n,
        S=post.S,
        L_S=post.L_S,
    )


def elbo_total(model, estats):
    """sum_i ELBO(q_i) under ``model`` for the q_i summarised by ``estats``; (LG.25).

    Equals ``elbo(model, x, post.m, post.L_S).sum()`` for the posterior
    ``post`` the statistics came from, in O(d k^2) without the data.
    """
    _check_model(model)
    estats = _check_estats(estats, model)
    W, psi = model.W, model.psi
    d, k = W.shape
    es = estats
    PW = W / psi[:, None]
    c = es.xbar - model.mu - W @ es.mbar
    # (LG.25)  (1/n) sum_i E_q |x_i - mu - W z|^2_{Psi^{-1}}
    quad = (
        np.sum(es.var_x / psi)
        - 2.0 * np.sum(PW * es.C_xm)
        + np.sum((W.T @ PW) * (es.C_mm + es.S))
        + np.sum(c * c / psi)
    )
    prior = np.trace(es.C_mm) + es.mbar @ es.mbar + np.trace(es.S)
    ecll = -0.5 * ((d + k) * LOG_2PI + np.sum(np.log(psi)) + quad + prior)
    entropy = _entropy_from_logdet(_logdet_chol(es.L_S), k)
    return float(es.n * (ecll + entropy))


# ---------------------------------------------------------------------------
# M-step.


def _check_noise(noise):
    if noise not in NOISE_MODELS:
        raise ValueError(f"noise must be one of {NOISE_MODELS}; got {noise!r}")
    return noise


def _resolve_floor(psi_floor, var_x):
    """``psi_floor`` checked, or its default PSI_FLOOR_REL * mean variance."""
    if psi_floor is not None:
        return float(check_positive(psi_floor, "psi_floor", shape=()))
    scale = float(np.mean(var_x))
    if scale <= 0:
        raise ValueError(
            "every column of x is constant, so the default psi_floor "
            "(PSI_FLOOR_REL * mean variance) is 0; pass psi_floor > 0"
        )
    return PSI_FLOOR_REL * scale


def m_step_from_stats(estats, *, noise="diag", psi_floor=None):
    """Closed-form M-step: argmax over (W, mu, psi) of sum_i E_q[log p(x_i, z)].

    Implements (LG.21)-(LG.24)::

        W   = C_xm (S + C_mm)^{-1}                                      (LG.22)
        mu  = xbar - W mbar                                              (LG.21)
        psi = max(var_x - rowsum(W * C_xm), psi_floor)               (diag)
        psi = max(mean_j(var_x - rowsum(W * C_xm)), psi_floor) 1     (isotropic)

    Parameters
    ----------
    estats : ExpectedStats
    noise : {"diag", "isotropic"}
        Factor analysis or probabilistic PCA.
    psi_floor : float, optional
        Lower bound on the noise variances (default ``PSI_FLOOR_REL`` times
        the mean of ``estats.var_x``); see the module docstring.
    """
    estats = _check_estats(estats)
    _check_noise(noise)
    floor = _resolve_floor(psi_floor, estats.var_x)
    es = estats
    # (LG.22)  W (S + C_mm) = C_xm
    L_zz = cholesky_of_spd(es.S + es.C_mm, "estats.S + estats.C_mm")
    W = cho_solve((L_zz, True), es.C_xm.T).T
    mu = es.xbar - W @ es.mbar  # (LG.21)
    psi = es.var_x - np.sum(W * es.C_xm, axis=1)  # (LG.23)
    if noise == "isotropic":
        psi = np.full_like(psi, np.mean(psi))  # (LG.24)
    return LinearGaussian(W, mu, np.maximum(psi, floor))


def m_step(x, post, *, noise="diag", psi_floor=None):
    """M-step from the data and the posteriors: ``m_step_from_stats`` of
    ``expected_stats_from_posterior(x, post)``; (LG.21)-(LG.24)."""
    estats = expected_stats_from_posterior(x, post)
    return m_step_from_stats(estats, noise=noise, psi_floor=psi_floor)


# ---------------------------------------------------------------------------
# EM and the closed-form pPCA MLE.


def _check_fit_dims(d, k):
    if k >= d:
        raise ValueError(
            f"k must be < d to fit the model (k = {k}, d = {d}): with k >= d the "
            "noise is not identifiable"
        )


def em(
    x, init, *, noise="diag", tol=DEFAULT_TOL, max_iter=DEFAULT_MAX_ITER, psi_floor=None
):
    """Fit factor analysis (``noise="diag"``) or pPCA (``"isotropic"``) by exact EM.

    ``em_from_stats(sufficient_stats(x), init, ...)``: the data enter once,
    through their sufficient statistics; each iteration costs
    O(d^2 k + d k^2). The loop, its trace and its convergence rule are
    ``refvi.models.em.run_em``: it stops when an iteration raises the mean
    log-likelihood per datum by at most ``tol`` (a decrease never counts as
    convergence; it is flagged in the trace and warned about).

    Parameters
    ----------
    x : array_like, shape (n, d)
    init : LinearGaussian
        Initial parameters (e.g. ``ppca_mle(x, k)``); for ``"isotropic"`` its
        psi must already be isotropic. The M-step gives mu = xbar - W mbar
        with mbar = A (xbar - mu_old): from mu_old = xbar, mu stays at xbar
        (its MLE) exactly; from elsewhere it moves there at EM's linear rate.
    noise : {"diag", "isotropic"}
    tol : float
        Convergence tolerance on the per-datum log-likelihood increase.
    max_iter : int
    psi_floor : float, optional
        Lower bound on the noise variances; see the module docstring.

    Returns
    -------
    model : LinearGaussian
    trace : refvi.models.em.EMTrace
    """
    _check_model(init, "init")
    stats = sufficient_stats(as_data(x, init.d))
    return em_from_stats(
        stats, init, noise=noise, tol=tol, max_iter=max_iter, psi_floor=psi_floor
    )


def em_from_stats(
    stats,
    init,
    *,
    noise="diag",
    tol=DEFAULT_TOL,
    max_iter=DEFAULT_MAX_ITER,
    psi_floor=None,
):
    """:func:`em` for data given by their ``SufficientStats`` (no pass over x)."""
    _check_model(init, "init")
    stats = _check_stats(stats, init)
    _check_noise(noise)
    _check_fit_dims(init.d, init.k)
    if noise == "isotropic" and np.ptp(init.psi) != 0:
        raise ValueError(
            "init.psi must be isotropic (all entries equal) for noise='isotropic'"
        )
    floor = _resolve_floor(psi_floor, np.diag(stats.Sigma_hat))
    return run_em(
        init,
        e_step=lambda model: (
            expected_stats(model, stats),
            log_marginal_total(model, stats),
        ),
        m_step=lambda es: m_step_from_stats(es, noise=noise, psi_floor=floor),
        elbo=elbo_total,
        n=stats.n,
        tol=tol,
        max_iter=max_iter,
    )


def ppca_mle(x, k, *, psi_floor=None):
    """Closed-form maximum-likelihood pPCA (Tipping & Bishop 1999); (LG.26).

    With the eigenvalues lambda_1 >= ... >= lambda_d of the sample covariance
    and eigenvectors U::

        sigma2 = mean(lambda_{k+1}, ..., lambda_d),
        W = U_k (Lambda_k - sigma2 I)^{1/2},    mu = xbar,

    unique up to W -> W R for orthogonal R. ``sigma2`` is floored at
    ``psi_floor`` (default as in EM) when the data lie in a k-dim subspace.
    Same as ``ppca_mle_from_stats(sufficient_stats(x), k)``.
    """
    return ppca_mle_from_stats(sufficient_stats(x), k, psi_floor=psi_floor)


def ppca_mle_from_stats(stats, k, *, psi_floor=None):
    """:func:`ppca_mle` for data given by their ``SufficientStats``."""
    stats = _check_stats(stats)
    k = check_int(k, "k", minimum=1)
    _check_fit_dims(stats.xbar.shape[0], k)
    lam, U = eigh(stats.Sigma_hat)
    lam, U = lam[::-1], U[:, ::-1]
    sigma2 = max(np.mean(lam[k:]), _resolve_floor(psi_floor, lam))
    W = U[:, :k] * np.sqrt(np.maximum(lam[:k] - sigma2, 0.0))
    return LinearGaussian.ppca(W, stats.xbar, sigma2)
