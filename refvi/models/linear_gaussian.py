"""Linear-Gaussian latent model: factor analysis and probabilistic PCA.

    z ~ N(0, I_k),    x | z ~ N(W z + mu, Psi),    Psi = diag(psi),

so x ~ N(mu, C) with C = W W^T + Psi. Factor analysis has a free diagonal
``psi``; probabilistic PCA has ``psi = sigma2 * ones(d)``. Every formula is
derived in ``derivations/linear_gaussian.md``; docstrings cite its labels
(LG.n). EM, the sufficient-statistic log-likelihood and the closed-form pPCA
MLE live in ``refvi.models.linear_gaussian_em``.

Nothing here forms or inverts the d x d covariance C (except the dense
reference path ``log_marginal(..., method="dense")``): C^{-1} and det C go
through the k x k matrix M = I + W^T Psi^{-1} W (Woodbury identity and the
matrix-determinant lemma), so a batch costs O(n d k + d k^2).

Gradients follow CONTRIBUTING.md: dicts keyed by argument name, ``dout`` an
upstream gradient over data points, a gradient w.r.t. ``psi`` is w.r.t. the
variances, a gradient w.r.t. a Cholesky factor ``L_q`` is lower triangular.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import cholesky, lapack, solve_triangular
from scipy.linalg import qr as scipy_qr

from refvi._validate import (
    as_data,
    as_datum,
    as_float_array,
    as_latent,
    check_dout,
    check_instance,
    check_lower_cholesky,
    check_positive,
    read_only_copy,
)
from refvi.gaussian import (
    LOG_2PI,
    _diag_inv,
    _entropy_from_logdet,
    _kl_chol,
    _log_prob_chol,
    _log_prob_whitened,
    _logdet_chol,
)

__all__ = [
    "LinearGaussian",
    "Posterior",
    "log_prior",
    "log_lik",
    "log_joint",
    "log_posterior",
    "posterior",
    "log_marginal",
    "log_marginal_and_grad",
    "expected_complete_loglik",
    "expected_complete_loglik_and_grad",
    "elbo",
    "elbo_and_grad",
    "kl_to_posterior",
]

# ---------------------------------------------------------------------------
# Parameters.


@dataclass(frozen=True, eq=False)
class LinearGaussian:
    """Parameters of z ~ N(0, I_k), x | z ~ N(W z + mu, diag(psi)); (LG.1).

    Parameters
    ----------
    W : array_like, shape (d, k)
        Factor loadings (Bishop's orientation: columns are latent directions).
    mu : array_like, shape (d,)
        Mean of x.
    psi : array_like, shape (d,)
        Noise variances, all > 0.

    All three are stored as read-only float64 copies. Invalid input raises
    ValueError naming the argument.
    """

    W: np.ndarray
    mu: np.ndarray
    psi: np.ndarray

    def __post_init__(self):
        W = as_float_array(self.W, "W", ndim=2)
        d = W.shape[0]
        mu = as_float_array(self.mu, "mu", shape=(d,))
        psi = check_positive(as_float_array(self.psi, "psi", shape=(d,)), "psi")
        object.__setattr__(self, "W", read_only_copy(W))
        object.__setattr__(self, "mu", read_only_copy(mu))
        object.__setattr__(self, "psi", read_only_copy(psi))

    @property
    def d(self):
        """Data dimension."""
        return self.W.shape[0]

    @property
    def k(self):
        """Latent dimension."""
        return self.W.shape[1]

    @property
    def cov(self):
        """Marginal covariance C = W W^T + diag(psi), shape (d, d); (LG.2).

        Formed densely: for reference and tests only.
        """
        return self.W @ self.W.T + np.diag(self.psi)

    @classmethod
    def ppca(cls, W, mu, sigma2):
        """Probabilistic PCA: ``psi = sigma2 * ones(d)``, scalar ``sigma2 > 0``."""
        W = as_float_array(W, "W", ndim=2)
        sigma2 = check_positive(as_float_array(sigma2, "sigma2", shape=()), "sigma2")
        return cls(W, mu, np.full(W.shape[0], float(sigma2)))


class Posterior(NamedTuple):
    """Exact posterior p(z | x_i) = N(m_i, S); S is shared by all data points.

    Attributes
    ----------
    m : ndarray, shape (n, k)
        Posterior means (LG.6).
    S : ndarray, shape (k, k)
        Posterior covariance (LG.5).
    L_S : ndarray, shape (k, k)
        Lower Cholesky factor of S.
    """

    m: np.ndarray
    S: np.ndarray
    L_S: np.ndarray


# ---------------------------------------------------------------------------
# Private kernels: no argument checking.


def _whitened_precision_diag(W, psi):
    """diag((I + V V^T)^{-1}), V = Psi^{-1/2} W, without cancellation; (d,).

    No argument checking. The textbook 1 - v_j^T M^{-1} v_j (M = I + V^T V)
    subtracts two numbers close to 1 when psi_j is tiny. With the complete QR
    [V; I] = [Q_1 Q_2] [R; 0], I - V M^{-1} V^T is the top-left block of
    Q_2 Q_2^T (the projector onto the least-squares residuals), so each entry
    is a sum of squares: |row j of Q_2's top block|^2. O(d^2 k).
    diag(C^{-1}) = diag((I + V V^T)^{-1}) / psi.
    """
    d, k = W.shape
    V = W / np.sqrt(psi)[:, None]
    Q, _ = np.linalg.qr(np.vstack([V, np.eye(k)]), mode="complete")
    return np.sum(Q[:d, k:] ** 2, axis=1)


class _AugmentedQR(NamedTuple):
    """Householder QR of the (d + k, k) matrix [Psi^{-1/2} W; I_k]."""

    s: np.ndarray  # sqrt(psi), (d,)
    qr: np.ndarray  # LAPACK's reflectors, (d + k, k)
    tau: np.ndarray  # their scalars, (k,)
    R: np.ndarray  # upper triangular (k, k), R^T R = M = I + W^T Psi^{-1} W


def _augmented_qr(W, psi):
    """QR of [Psi^{-1/2} W; I] (no argument checking): the backward-stable way to
    the least-squares problem whose solution is the posterior mean."""
    k = W.shape[1]
    s = np.sqrt(psi)
    (qr, tau), R = scipy_qr(np.vstack([W / s[:, None], np.eye(k)]), mode="raw")
    return _AugmentedQR(s, qr, tau, R[:k])


def _logdet_C_qr(aq):
    """log det C = log det Psi + log det M, M = R^T R; (LG.4). No checking."""
    return 2.0 * float(np.sum(np.log(aq.s)) + np.sum(np.log(np.abs(np.diag(aq.R)))))


def _whitened_residuals(aq, r):
    """Psi^{-1/2} e_i and m_i for residuals r_i = x_i - mu (n, d); (LG.6)-(LG.7).

    No argument checking. m_i = argmin |Psi^{-1/2}(r_i - W m)|^2 + |m|^2 is the
    posterior mean, e_i = r_i - W m_i, and [Psi^{-1/2} e_i; -m_i] is that
    least-squares residual: both come from Householder reflections (LAPACK
    dormqr), so Psi^{-1/2} e_i is accurate to eps |Psi^{-1/2} r_i| even when
    W m_i cancels r_i to many digits (tiny psi_j), where r - W m from a
    normal-equations m is not. O(n d k).
    """
    n, d = r.shape
    k = aq.R.shape[0]
    c = np.zeros((d + k, n))
    c[:d] = (r / aq.s).T
    lwork = max(1, n) * 64
    c, _, _ = lapack.dormqr("L", "T", aq.qr, aq.tau, c, lwork)
    m = solve_triangular(aq.R, c[:k], lower=False).T
    c[:k] = 0.0
    c, _, _ = lapack.dormqr("L", "N", aq.qr, aq.tau, c, lwork)
    return c[:d].T, m


def _posterior_cov(aq):
    """S = M^{-1} (LG.5) and its lower Cholesky factor L_S, from the QR's R.

    No argument checking. R^T R = M, so S = U U^T with U = R^{-1} (upper
    triangular, one triangular solve); L_S comes from the LQ decomposition
    U = L_S Q^T (a QR of U^T), so L_S L_S^T = U U^T = S. Neither M nor S is
    formed and then factorised: with a tiny psi_j, M = I + W^T Psi^{-1} W has
    entries of size 1/psi_j whose rounding the normal equations pass on to S
    and m (errors of 1e-8 at psi = 1e-10), while R from the QR of
    [Psi^{-1/2} W; I] is backward stable.
    """
    k = aq.R.shape[0]
    U = solve_triangular(aq.R, np.eye(k), lower=False)
    Rt = np.linalg.qr(U.T, mode="r")
    L_S = Rt.T * np.sign(np.diag(Rt))  # columns signed: a positive diagonal
    S = L_S @ L_S.T
    return 0.5 * (S + S.T), L_S


def _check_model(model, name="model"):
    return check_instance(model, LinearGaussian, name)


def _check_q(model, x, m_q, L_q, log_std_q):
    """Validate a Gaussian q_i = N(m_q_i, L_q L_q^T) per data point.

    Exactly one of ``L_q`` (k, k) shared / (n, k, k) per datum, or
    ``log_std_q`` (n, k) (diagonal q) is given. Returns x, m_q and the factor
    as an array, ``L_q`` built as diag(exp(log_std_q)) for a diagonal q.
    """
    _check_model(model)
    x = as_data(x, model.d)
    n, k = x.shape[0], model.k
    m_q = as_float_array(m_q, "m_q", shape=(n, k))
    if (L_q is None) == (log_std_q is None):
        raise ValueError("give exactly one of L_q and log_std_q")
    if log_std_q is not None:
        log_std_q = as_float_array(log_std_q, "log_std_q", shape=(n, k))
        with np.errstate(over="ignore", under="ignore"):
            std = np.exp(log_std_q)
        if not np.all(np.isfinite(std) & (std > 0)):
            raise ValueError("log_std_q must give a finite positive exp(log_std_q)")
        L_q = std[:, :, None] * np.eye(k)
    elif np.ndim(L_q) == 3:
        L_q = check_lower_cholesky(L_q, "L_q", d=k, n=n)
    else:
        L_q = check_lower_cholesky(L_q, "L_q", d=k)
    return x, m_q, L_q


# ---------------------------------------------------------------------------
# Densities for one datum x (d,) at latent points z (m, k); (LG.1), (LG.3).


def log_prior(model, z):
    """log p(z_j) = log N(z_j; 0, I_k) for each row of ``z`` (m, k) -> (m,); (LG.1)."""
    _check_model(model)
    z = as_latent(z, model.k)
    return _log_prob_whitened(z, 0.0)


def log_lik(model, x, z):
    """log p(x | z_j) = log N(x; W z_j + mu, diag(psi)) -> (m,); (LG.1).

    Parameters
    ----------
    model : LinearGaussian
    x : array_like, shape (d,)
        One data point.
    z : array_like, shape (m, k)
        Latent points.
    """
    _check_model(model)
    return _log_lik(model, as_datum(x, model.d), as_latent(z, model.k))


def _log_lik(model, x, z):
    """log N(x; W z + mu, diag(psi)) over broadcast batch axes; no checking."""
    resid = (x - model.mu) - z @ model.W.T
    return _log_prob_whitened(resid / np.sqrt(model.psi), np.sum(np.log(model.psi)))


def log_joint(model, x, z):
    """log p(x, z_j) = log p(z_j) + log p(x | z_j) -> (m,); (LG.1).

    Minus :func:`log_posterior` it is log p(x) at every z (LG.3).
    """
    return log_prior(model, z) + log_lik(model, x, z)


def log_posterior(model, x, z):
    """log p(z_j | x) = log N(z_j; m, S) for one datum ``x`` (d,) -> (m,); (LG.5)."""
    _check_model(model)
    x = as_datum(x, model.d)
    z = as_latent(z, model.k)
    post = posterior(model, x[None, :])
    return _log_prob_chol(z, post.m[0], post.L_S)


# ---------------------------------------------------------------------------
# Marginal likelihood and posterior.


def posterior(model, x):
    """Exact posterior p(z | x_i) = N(m_i, S) for each row of ``x`` (n, d).

    Implements derivations/linear_gaussian.md (LG.5)-(LG.6):
    S = (I + W^T Psi^{-1} W)^{-1},  m_i = S W^T Psi^{-1} (x_i - mu), computed
    from the Householder QR of [Psi^{-1/2} W; I] (m_i as its least-squares
    solution, S and L_S from R; see :func:`_posterior_cov`), not from the
    normal equations.

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, psi down to 1e-10 (docs/accuracy.md).

    Returns
    -------
    Posterior
        ``m`` (n, k), ``S`` (k, k), ``L_S`` (k, k).
    """
    _check_model(model)
    x = as_data(x, model.d)
    aq = _augmented_qr(model.W, model.psi)
    _, m = _whitened_residuals(aq, x - model.mu)
    S, L_S = _posterior_cov(aq)
    return Posterior(m, S, L_S)


def log_marginal(model, x, method="woodbury"):
    """log p(x_i) = log N(x_i; mu, W W^T + Psi) for each row of ``x`` (n, d).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Parameters
    ----------
    model : LinearGaussian
    x : array_like, shape (n, d)
    method : {"woodbury", "dense"}
        ``"woodbury"`` (default): (LG.4) and (LG.7), O(n d k + d k^2), never
        forming C. ``"dense"``: forms C and factorises it, O(d^3 + n d^2); a
        reference for tests.

    Returns
    -------
    ndarray, shape (n,)
    """
    if method == "dense":
        _check_model(model)
        x = as_data(x, model.d)
        return _log_prob_chol(x, model.mu, cholesky(model.cov, lower=True))
    if method != "woodbury":
        raise ValueError(f"method must be 'woodbury' or 'dense'; got {method!r}")
    _check_model(model)
    return _log_marginal_woodbury(model, as_data(x, model.d)).value


class _MarginalCache(NamedTuple):
    value: np.ndarray  # log p(x_i), (n,)
    aq: _AugmentedQR
    e: np.ndarray  # residuals x_i - mu - W m_i, (n, d)
    m: np.ndarray  # posterior means m_i, (n, k)


def _log_marginal_woodbury(model, x):
    """log p(x_i) by (LG.4) and (LG.7), and what its gradient reuses. No checking."""
    W, psi = model.W, model.psi
    aq = _augmented_qr(W, psi)
    u, m = _whitened_residuals(aq, x - model.mu)  # u = Psi^{-1/2}(r - W m)
    # (LG.7)  r^T C^{-1} r = |Psi^{-1/2}(r - W m)|^2 + |m|^2   (no cancellation)
    quad = np.einsum("ij,ij->i", u, u) + np.einsum("ij,ij->i", m, m)
    value = -0.5 * (model.d * LOG_2PI + _logdet_C_qr(aq) + quad)
    return _MarginalCache(value, aq, u * aq.s, m)


def log_marginal_and_grad(model, x, dout=None):
    """log p(x_i) (LG.4), (LG.7) and the gradients of sum_i dout_i log p(x_i).

    Gradients (LG.8)-(LG.9), with e_i = x_i - mu - W m_i, b_i = C^{-1}(x_i - mu)
    = Psi^{-1} e_i, W^T b_i = m_i (since C^{-1} W = Psi^{-1} W S) and
    D = sum_i dout_i::

        d/dmu  = sum_i dout_i b_i
        d/dW   = Psi^{-1} sum_i dout_i e_i m_i^T - D Psi^{-1/2} (I + V V^T)^{-1} V
        d/dpsi = -1/2 Psi^{-1} (D c - sum_i dout_i e_i^2 / psi),
                 c = diag((I + V V^T)^{-1}) = psi diag(C^{-1}),  V = Psi^{-1/2} W

    Nothing subtracts two numbers of size 1/psi_j: W^T b_i is the posterior
    mean itself, e_i and (I + V V^T)^{-1} V are least-squares residuals from
    Householder reflections (:func:`_whitened_residuals`), and c is a sum of
    squares (:func:`_whitened_precision_diag`).

    Accuracy: value within a few eps of the 50-digit naive formula relative to
    |log p|; gradients within eps times the problem's condition number (the
    gradient is a difference of data and model terms, which cancel at a
    stationary point), see docs/accuracy.md.

    Returns
    -------
    value : ndarray, shape (n,)
    grads : dict
        ``{"W": (d, k), "mu": (d,), "psi": (d,)}``.
    """
    _check_model(model)
    x = as_data(x, model.d)
    dout = check_dout(dout, x.shape[0])
    W, psi = model.W, model.psi
    value, aq, e, m = _log_marginal_woodbury(model, x)
    D = dout.sum()
    de = dout[:, None] * e
    # (LG.8)  d/dW = sum_i dout_i b_i m_i^T - D C^{-1} W, with
    # C^{-1} W = Psi^{-1/2} (I + V V^T)^{-1} V: the whitened least-squares
    # residuals of W's columns (W S itself cancels to psi_j in a tiny-psi row)
    u_W, _ = _whitened_residuals(aq, W.T)
    dW = de.T @ m / psi[:, None] - D * u_W.T / aq.s[:, None]
    # (LG.9)  d/dpsi = -1/2 (D diag(C^{-1}) - sum_i dout_i b_i^2)
    c = _whitened_precision_diag(W, psi)
    dpsi = -0.5 * (D * c - np.einsum("ij,ij->j", de, e) / psi) / psi
    return value, {"W": dW, "mu": de.sum(axis=0) / psi, "psi": dpsi}


# ---------------------------------------------------------------------------
# ELBO, expected complete-data log-likelihood, KL to the posterior.


class _ECLLCache(NamedTuple):
    PW: np.ndarray  # Psi^{-1} W, (d, k)
    Pr: np.ndarray  # Psi^{-1} (x_i - mu - W m_q_i), (n, d)
    GIL: np.ndarray  # (W^T Psi^{-1} W + I) L_q, (k, k) or (n, k, k)


def _ecll(W, mu, psi, x, m_q, L_q):
    """E_q[log p(x_i, z)] (LG.10), by the Gaussian expectation of a quadratic
    (LG.0), and what :func:`_ecll_grad` needs; no checking.

    ``L_q`` is (k, k) shared by all data points or (n, k, k).
    """
    d, k = W.shape
    PW = W / psi[:, None]
    GI = W.T @ PW + np.eye(k)  # W^T Psi^{-1} W + I
    r = x - mu - m_q @ W.T  # x_i - mu - W m_q_i
    Pr = r / psi
    GIL = GI @ L_q
    if L_q.ndim == 2:
        tr = np.full(x.shape[0], np.sum(GIL * L_q))
    else:
        tr = np.einsum("nij,nij->n", GIL, L_q)
    # (LG.10)  E_q log p(x, z) = -1/2 [(d + k) log 2pi + log det Psi
    #            + |Psi^{-1/2}(x - mu - W m_q)|^2 + |m_q|^2
    #            + tr((W^T Psi^{-1} W + I) Sigma_q)]
    value = -0.5 * (
        (d + k) * LOG_2PI
        + np.sum(np.log(psi))
        + np.einsum("ij,ij->i", r, Pr)
        + np.einsum("ij,ij->i", m_q, m_q)
        + tr
    )
    return value, _ECLLCache(PW, Pr, GIL)


def _ecll_grad(W, psi, m_q, L_q, cache, dout):
    """Gradients (LG.12)-(LG.13) of sum_i dout_i E_q[log p(x_i, z)]; no checking."""
    PW, Pr, GIL = cache
    D = dout.sum()
    if L_q.ndim == 2:
        Sigma_sum = D * (L_q @ L_q.T)  # sum_i dout_i Sigma_q_i
        dL_q = -D * np.tril(GIL)
    else:
        Sigma_sum = np.einsum("n,nij,nlj->il", dout, L_q, L_q)
        dL_q = -dout[:, None, None] * np.tril(GIL)
    # (LG.12)  d/dm_q = W^T Psi^{-1} r - m_q,  d/dL_q = -tril((W^T Psi^{-1} W + I) L_q)
    dm_q = dout[:, None] * (Pr @ W - m_q)
    # (LG.13)  d/dW = sum_i dout_i Psi^{-1} r_i m_q_i^T - Psi^{-1} W Sigma_sum
    #          d/dmu = sum_i dout_i Psi^{-1} r_i
    a = dout[:, None] * Pr
    dW = a.T @ m_q - PW @ Sigma_sum
    #          d/dpsi = -1/2 [D / psi - sum_i dout_i r_i^2 / psi^2
    #                         - diag(W Sigma_sum W^T) / psi^2]
    dpsi = -0.5 * (
        D / psi
        - np.einsum("ij,ij->j", a, Pr)
        - np.sum((W @ Sigma_sum) * W, axis=1) / psi**2
    )
    return {"m_q": dm_q, "L_q": dL_q, "W": dW, "mu": a.sum(axis=0), "psi": dpsi}


def _entropy(L_q, n):
    """H[q_i] = k/2 (1 + log 2 pi) + sum_j log (L_q)_jj (LG.11).

    The entropy is refvi.gaussian's (G.7).
    """
    value = _entropy_from_logdet(_logdet_chol(L_q), L_q.shape[-1])
    return np.full(n, value) if L_q.ndim == 2 else value


def _entropy_grad(L_q, dout):
    """d/dL_q of sum_i dout_i H[q_i] (LG.11): diag(1 / L_jj), (G.15)."""
    if L_q.ndim == 2:
        return dout.sum() * _diag_inv(L_q)
    return dout[:, None, None] * _diag_inv(L_q)


def _to_log_std(grads, L_q):
    """Chain rule L_q = diag(exp(log_std_q)): d/dlog_std = diag(dL_q) * exp(log_std)."""
    grads = dict(grads)
    dL_q = grads.pop("L_q")
    grads["log_std_q"] = np.diagonal(dL_q, axis1=1, axis2=2) * np.diagonal(
        L_q, axis1=1, axis2=2
    )
    return grads


def _q_objective(model, x, m_q, L_q, log_std_q, dout, with_entropy, with_grad=True):
    """Validate, then E_q[log p(x, z)] (+ H[q] for the ELBO) and, ``with_grad``,
    its gradients (a value-only call runs the forward pass only)."""
    x, m_q, L = _check_q(model, x, m_q, L_q, log_std_q)
    value, cache = _ecll(model.W, model.mu, model.psi, x, m_q, L)
    if with_entropy:
        value = value + _entropy(L, x.shape[0])
    if not with_grad:
        return value
    dout = check_dout(dout, x.shape[0])
    grads = _ecll_grad(model.W, model.psi, m_q, L, cache, dout)
    if with_entropy:
        grads["L_q"] = grads["L_q"] + _entropy_grad(L, dout)
    return value, (grads if log_std_q is None else _to_log_std(grads, L))


def expected_complete_loglik(model, x, m_q, L_q=None, *, log_std_q=None):
    """E_{q_i}[log p(x_i, z)] for q_i = N(m_q_i, Sigma_q_i) -> (n,); (LG.10).

    The EM auxiliary function Q(theta) is its sum over the data with q the
    posterior under the current parameters. Arguments as in :func:`elbo`.
    Value only: the forward pass of :func:`expected_complete_loglik_and_grad`.
    """
    return _q_objective(
        model, x, m_q, L_q, log_std_q, None, with_entropy=False, with_grad=False
    )


def expected_complete_loglik_and_grad(
    model, x, m_q, L_q=None, *, log_std_q=None, dout=None
):
    """E_{q_i}[log p(x_i, z)] (LG.10) and its gradients (LG.12)-(LG.13).

    Returns
    -------
    value : ndarray, shape (n,)
    grads : dict
        ``{"m_q", "L_q" or "log_std_q", "W", "mu", "psi"}``, each with the
        shape of its argument (``L_q`` lower triangular).
    """
    return _q_objective(model, x, m_q, L_q, log_std_q, dout, with_entropy=False)


def elbo(model, x, m_q, L_q=None, *, log_std_q=None):
    """ELBO(q_i) = E_{q_i}[log p(x_i, z) - log q_i(z)] for each data point -> (n,).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    Closed form (LG.10)-(LG.11). q_i = N(m_q_i, L_q L_q^T) with ``L_q`` (k, k)
    shared or (n, k, k) per datum, or diagonal q_i = N(m_q_i,
    diag(exp(2 log_std_q_i))) with ``log_std_q`` (n, k).

    Parameters
    ----------
    model : LinearGaussian
    x : array_like, shape (n, d)
    m_q : array_like, shape (n, k)
    L_q : array_like, shape (k, k) or (n, k, k), optional
    log_std_q : array_like, shape (n, k), optional (keyword only)
    """
    return _q_objective(
        model, x, m_q, L_q, log_std_q, None, with_entropy=True, with_grad=False
    )


def elbo_and_grad(model, x, m_q, L_q=None, *, log_std_q=None, dout=None):
    """ELBO(q_i) (LG.10)-(LG.11) and the gradients of sum_i dout_i ELBO(q_i).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    The model gradients equal those of :func:`expected_complete_loglik`
    (LG.13); the q gradients add the entropy's d/dL_q = diag(1 / L_jj) (LG.14).

    Returns
    -------
    value : ndarray, shape (n,)
    grads : dict
        ``{"m_q", "L_q" or "log_std_q", "W", "mu", "psi"}``, each with the
        shape of its argument (``L_q`` lower triangular).
    """
    return _q_objective(model, x, m_q, L_q, log_std_q, dout, with_entropy=True)


def kl_to_posterior(model, x, m_q, L_q=None, *, log_std_q=None):
    """KL(q_i || p(z | x_i)) for each data point -> (n,); (LG.15).

    Accuracy: within 1e-12 relative of a 50-digit evaluation of the naive
    formula over the stress corpus, or within 16 kappa eps where the problem's
    condition number kappa is larger (docs/accuracy.md).

    The Gaussian KL between q_i = N(m_q_i, Sigma_q_i) and N(m_i, S)::

        KL = 1/2 [tr(S^{-1} Sigma_q) + (m_i - m_q_i)^T S^{-1} (m_i - m_q_i) - k
                  + log det S - log det Sigma_q]

    computed from the posterior and q alone, not as log p(x) - ELBO, so the
    identity log p(x) = ELBO + KL (LG.16) is a real check. Arguments as in
    :func:`elbo`.
    """
    x, m_q, L = _check_q(model, x, m_q, L_q, log_std_q)
    # S = M^{-1} = R^{-1} R^{-T} from the Householder QR of [Psi^{-1/2} W; I]
    # (M itself, a normal-equations matrix, is never formed); its lower factor
    # from the QR of R^{-T} = Q L_S^T; m_i by least squares
    aq = _augmented_qr(model.W, model.psi)
    _, m = _whitened_residuals(aq, x - model.mu)
    k = aq.R.shape[0]
    R_inv_T = solve_triangular(aq.R, np.eye(k), lower=False).T
    L_S = np.linalg.qr(R_inv_T, mode="r").T
    L_S = L_S * np.sign(np.diag(L_S))  # positive diagonal: flip columns' signs
    # refvi.gaussian's one Gaussian KL, batched over the data (G.6)
    return _kl_chol(m_q, L, m, L_S)
