"""Variational EM for factor analysis with a mean-field (fully factorised) q.

Exact EM (``refvi.models.linear_gaussian_em.em``) sets q_i = p(z | x_i) in
the E-step, so F(q, theta) = log p(x; theta) there. Variational EM restricts
q_i = prod_j N(m_ij, v_j) and maximises F over that family instead. The
posterior is N(m*_i, Lambda^{-1}) with precision Lambda = I + W^T Psi^{-1} W
(derivations/linear_gaussian.md (LG.5)); the factorised q that maximises F,
i.e. minimises KL(q || p(z | x_i)), has

    m_i = m*_i,    v_j = 1 / Lambda_jj,

(stationarity of the Gaussian KL: Lambda (m - m*) = 0 and 1 / v_j = Lambda_jj),
so the E-step is the exact one with S replaced by diag(1 / Lambda_jj). Its
KL(q || p(z | x)) > 0 unless Lambda is diagonal, so F < log p(x), and the
M-step, which maximises F and not log p(x), is pulled towards parameters
whose posterior is nearly factorised: the fixed point is biased (Turner &
Sahani 2011, "Two problems with variational expectation maximisation for
time-series models").

The loop is ``refvi.models.em.run_em`` with F in the role of the monitored
objective: coordinate ascent on F, so F never decreases, while log p(x) may.

With W free that bias is invisible in the likelihood: log p(x) depends on W
only through W W^T, and a rotation W -> W R that diagonalises
W^T Psi^{-1} W makes the posterior factorise, so the mean-field bound is
tight at a rotated MLE and variational EM converges there (the same
W W^T + Psi and log p(x) as exact EM). :func:`em_fixed_loadings` holds W at
known loadings, which no rotation can change, and fits only (mu, psi): there
the mean-field fixed point differs from the restricted MLE, has a lower
log-likelihood, and F < log p(x) at it.
"""

from dataclasses import dataclass

import numpy as np

from refvi._validate import as_data, as_float_array
from refvi.models.em import DEFAULT_MAX_ITER, DEFAULT_TOL, run_em
from refvi.models.linear_gaussian import LinearGaussian
from refvi.models.linear_gaussian_em import (
    _check_estats,
    _resolve_floor,
    elbo_total,
    expected_stats,
    log_marginal_total,
    m_step_from_stats,
    sufficient_stats,
)

__all__ = [
    "mean_field_variances",
    "mean_field_stats",
    "VariationalEMTrace",
    "variational_em",
    "E_STEPS",
    "m_step_fixed_loadings",
    "em_fixed_loadings",
]


def mean_field_variances(model):
    """v_j = 1 / Lambda_jj with Lambda = I + W^T Psi^{-1} W, shape (k,)."""
    if not isinstance(model, LinearGaussian):
        raise TypeError(f"model must be a LinearGaussian; got {type(model).__name__}")
    return 1.0 / (1.0 + np.sum(model.W**2 / model.psi[:, None], axis=0))


def mean_field_stats(model, stats):
    """The mean-field E-step as ``ExpectedStats``: the exact posterior means
    (``linear_gaussian_em.expected_stats``) with S = diag(v)."""
    v = mean_field_variances(model)
    return expected_stats(model, stats)._replace(S=np.diag(v), L_S=np.diag(np.sqrt(v)))


@dataclass(frozen=True)
class VariationalEMTrace:
    """What happened in each variational EM iteration (totals over the data).

    Attributes
    ----------
    elbo : ndarray, shape (T + 1,)
        F(q_t, theta_t) after the mean-field E-step at theta_t.
    elbo_m : ndarray, shape (T,)
        F(q_t, theta_{t+1}) after the M-step of iteration t.
    log_lik : ndarray, shape (T + 1,)
        log p(x; theta_t), always >= ``elbo``.
    converged : bool
        Whether the last iteration raised F / n by at most ``tol``.
    n_iter : int
    """

    elbo: np.ndarray
    elbo_m: np.ndarray
    log_lik: np.ndarray
    converged: bool
    n_iter: int


def variational_em(
    x,
    model0,
    *,
    noise="diag",
    tol=DEFAULT_TOL,
    max_iter=DEFAULT_MAX_ITER,
    psi_floor=None,
):
    """Fit factor analysis (or pPCA) by EM with the mean-field E-step.

    Parameters
    ----------
    x : array_like, shape (n, d)
    model0 : LinearGaussian
    noise : {"diag", "isotropic"}
        As in ``linear_gaussian_em.em``.
    tol : float
        Stop when an iteration raises F per datum by at most ``tol``.
    max_iter : int
    psi_floor : float, optional
        As in ``linear_gaussian_em.m_step_from_stats``.

    Returns
    -------
    model : LinearGaussian
    trace : VariationalEMTrace
    """
    if not isinstance(model0, LinearGaussian):
        raise TypeError(f"model0 must be a LinearGaussian; got {type(model0).__name__}")
    return _fit(
        x,
        model0,
        mean_field_stats,
        lambda es: m_step_from_stats(es, noise=noise, psi_floor=psi_floor),
        tol,
        max_iter,
    )


def _fit(x, model0, expect, m_step, tol, max_iter):
    """``run_em`` with the E-step ``expect(model, stats) -> ExpectedStats``,
    F from (LG.25) and log p(x) from (LG.19) recorded at every theta_t."""
    stats = sufficient_stats(as_data(x, model0.d))
    log_liks = []

    def e_step(model):
        es = expect(model, stats)
        log_liks.append(log_marginal_total(model, stats))
        return es, elbo_total(model, es)

    model, trace = run_em(
        model0,
        e_step=e_step,
        m_step=m_step,
        elbo=elbo_total,
        n=stats.n,
        tol=tol,
        max_iter=max_iter,
    )
    return model, VariationalEMTrace(
        elbo=trace.log_lik,
        elbo_m=trace.elbo_m,
        log_lik=np.array(log_liks),
        converged=trace.converged,
        n_iter=trace.n_iter,
    )


# ---------------------------------------------------------------------------
# Known loadings: W held fixed, only (mu, psi) fitted.

#: The E-steps of :func:`em_fixed_loadings`.
E_STEPS = ("mean_field", "exact")


def m_step_fixed_loadings(estats, W, *, psi_floor=None):
    """argmax over (mu, psi) of sum_i E_q[log p(x_i, z)] with W held fixed.

    derivations/linear_gaussian.md (LG.21) and the psi-maximiser derived for
    (LG.23), at the given W instead of the M-step's::

        mu    = xbar - W mbar                                         (LG.21)
        R     = Sigma_hat - W C_xm^T - C_xm W^T + W (S + C_mm) W^T
        psi_j = max(R_jj, psi_floor)

    (Q = -n/2 sum_j [log psi_j + R_jj / psi_j] + const for every W, so psi_j
    = R_jj; ``linear_gaussian_em.m_step_from_stats`` has R = Sigma_hat - W
    C_xm^T at its own W.) Only the diagonal of R is formed, O(d k^2).

    Parameters
    ----------
    estats : ExpectedStats
    W : array_like, shape (d, k)
    psi_floor : float, optional
        As in ``linear_gaussian_em.m_step_from_stats``.
    """
    es = _check_estats(estats)
    W = as_float_array(W, "W", shape=(es.xbar.shape[0], es.mbar.shape[0]))
    floor = _resolve_floor(psi_floor, es.var_x)
    mu = es.xbar - W @ es.mbar  # (LG.21)
    # R_jj = var_x_j - 2 (W C_xm^T)_jj + (W (S + C_mm) W^T)_jj
    R_diag = (
        es.var_x
        - 2.0 * np.sum(W * es.C_xm, axis=1)
        + np.sum((W @ (es.S + es.C_mm)) * W, axis=1)
    )
    return LinearGaussian(W, mu, np.maximum(R_diag, floor))


def em_fixed_loadings(
    x,
    model0,
    *,
    e_step="mean_field",
    tol=DEFAULT_TOL,
    max_iter=DEFAULT_MAX_ITER,
    psi_floor=None,
):
    """EM for factor analysis with known loadings W = model0.W: fits (mu, psi).

    Each iteration: the E-step at theta_t = (W, mu_t, psi_t), exact
    (q_i = p(z | x_i), ``linear_gaussian_em.expected_stats``, F = log p(x))
    or mean-field (:func:`mean_field_stats`, F < log p(x) unless
    W^T Psi^{-1} W is diagonal); then :func:`m_step_fixed_loadings`. F is
    the closed form ``linear_gaussian_em.elbo_total`` (LG.25), log p(x) the
    exact ``log_marginal_total`` (LG.19); the loop is
    ``refvi.models.em.run_em`` (F never decreases). With W fixed no rotation
    can make the posterior factorise, so the mean-field fixed point is
    biased: it differs from the restricted MLE that the exact E-step reaches
    (Turner & Sahani 2011).

    Parameters
    ----------
    x : array_like, shape (n, d)
    model0 : LinearGaussian
        Its W is held fixed; (mu, psi) are the starting point.
    e_step : {"mean_field", "exact"}
    tol, max_iter, psi_floor
        As in :func:`variational_em`.

    Returns
    -------
    model : LinearGaussian
    trace : VariationalEMTrace
        ``elbo`` F after each E-step, ``elbo_m`` after each M-step,
        ``log_lik`` log p(x) at each theta_t.
    """
    if not isinstance(model0, LinearGaussian):
        raise TypeError(f"model0 must be a LinearGaussian; got {type(model0).__name__}")
    if e_step not in E_STEPS:
        raise ValueError(f"e_step must be one of {E_STEPS}; got {e_step!r}")
    expect = mean_field_stats if e_step == "mean_field" else expected_stats
    return _fit(
        x,
        model0,
        expect,
        lambda es: m_step_fixed_loadings(es, model0.W, psi_floor=psi_floor),
        tol,
        max_iter,
    )
