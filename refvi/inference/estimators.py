"""Estimators of the ELBO of a linear-Gaussian decoder and of its gradients.

The decoder is ``refvi.models.linear_gaussian.LinearGaussian``:
z ~ N(0, I_k), x | z ~ N(W z + mu, diag(psi)). The variational family is
q_i = N(m_i, Sigma_i), given per datum by ``encoder.QParams`` (m (n, k) with
``log_std`` (n, k) for a diagonal Sigma_i, or ``L`` (k, k) for a shared full
one). ELBO_i = E_{q_i}[log p(x_i, z) - log q_i(z)].

Every stochastic estimator takes its noise ``eps`` (S, n, k) explicitly: S
standard-normal draws per datum, z_si = m_i + L_i eps_si. It is then a
deterministic function of the parameters, so finite differences of it mean
something, and its expectation over eps can be taken by Gauss-Hermite
quadrature. Computation is batched over samples and data (no Python loop).

Estimators (each returns ``(value, grads)``; ``value`` (n,) is the estimate of
ELBO_i averaged over the S samples, ``grads`` the gradients of
sum_i dout_i value_i keyed ``m_q``, ``log_std_q`` or ``L_q``, ``W``, ``mu``,
``psi``):

- :func:`elbo_analytic_and_grad`: the closed form (LG.10)-(LG.14);
- :func:`elbo_reparam_and_grad`: pathwise (reparameterization, Kingma &
  Welling 2014), ``form="kl"`` log p(x|z) sampled minus the analytic
  KL(q || p(z)) (SGVB-B), ``form="entropy"`` log p(x, z) sampled plus the
  analytic entropy, ``form="sampled"`` log p(x, z) - log q(z) both sampled
  (SGVB-A): its gradient is the pathwise one plus the score term
  -d/dphi log q_phi(z) at fixed z;
- :func:`elbo_path_derivative_and_grad`: "sticking the landing" (Roeder, Wu
  & Duvenaud 2017): SGVB-A without the score term, which has mean zero; at
  q = p(z | x) every sample's gradient w.r.t. q is exactly zero;
- :func:`elbo_score_and_grad`: the score function (REINFORCE):
  E_q[(f(z) - b) d/dphi log q_phi(z)] with f = log p(x, z) - log q(z) and an
  optional baseline b independent of eps;
- :func:`iwae_and_grad`: the importance-weighted bound of Burda, Grosse &
  Salakhutdinov (2016), log (1/K) sum_s w_s, w_s = p(x, z_s) / q(z_s), with
  its reparameterized gradient.

With ``per_sample=True`` the value is (S, n) and each gradient has a leading
axis S: sample s's single-draw estimate (their mean over s is the default
output). Tests and the variance benchmark use it.
"""

from functools import partial
from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp, softmax

from refvi import gaussian
from refvi._validate import (
    as_data,
    as_float_array,
    check_dout,
    check_int,
    check_lower_cholesky,
)
from refvi.gaussian import _log_prob_whitened
from refvi.inference.encoder import QParams
from refvi.models import linear_gaussian as lg

__all__ = [
    "check_q",
    "elbo_analytic_and_grad",
    "elbo_reparam_and_grad",
    "elbo_path_derivative_and_grad",
    "elbo_score_and_grad",
    "iwae_and_grad",
    "REPARAM_FORMS",
    "ESTIMATORS",
    "KERNELS",
]


# ---------------------------------------------------------------------------
# Argument checks.


def check_q(q, n, k):
    """Validate per-datum variational parameters ``q`` for n data points, k latents."""
    n = check_int(n, "n", minimum=1)
    k = check_int(k, "k", minimum=1)
    if not isinstance(q, QParams):
        raise TypeError(f"q must be encoder.QParams; got {type(q).__name__}")
    m = as_float_array(q.m, "q.m", shape=(n, k))
    if (q.log_std is None) == (q.L is None):
        raise ValueError("q must have exactly one of q.log_std and q.L")
    if q.L is not None:
        return QParams(m, None, check_lower_cholesky(q.L, "q.L", d=k))
    return QParams(m, as_float_array(q.log_std, "q.log_std", shape=(n, k)))


def _check(model, x, q, eps=None, dout=None, *, need_eps=True):
    if not isinstance(model, lg.LinearGaussian):
        raise TypeError(f"model must be a LinearGaussian; got {type(model).__name__}")
    x = as_data(x, model.d)
    n, k = x.shape[0], model.k
    q = check_q(q, n, k)
    if need_eps:
        eps = as_float_array(eps, "eps", ndim=3, shape=(None, n, k))
    return x, q, eps, check_dout(dout, n)


# ---------------------------------------------------------------------------
# Private kernels: no argument checking. Arrays carry a sample axis S first;
# ``c`` (S, n) is the upstream weight of each sample's value.


def _sum(a, per_sample):
    """Sum over the sample axis unless ``per_sample``."""
    return a if per_sample else a.sum(axis=0)


def _sample(q, eps):
    """z_si = m_i + L_i eps_si; (G.4)."""
    if q.L is not None:
        return q.m + eps @ q.L.T
    return q.m + eps * np.exp(q.log_std)


def _pathwise(q, eps, g_z, per_sample):
    """Gradients w.r.t. q of sum_si g_si . z_si with z = m + L eps; (G.5)."""
    grads = {"m_q": _sum(g_z, per_sample)}
    if q.L is not None:
        k = q.L.shape[0]
        if per_sample:
            grads["L_q"] = np.tril(np.einsum("sna,snb->sab", g_z, eps))
        else:
            grads["L_q"] = np.tril(g_z.reshape(-1, k).T @ eps.reshape(-1, k))
    else:
        grads["log_std_q"] = _sum(g_z * eps, per_sample) * np.exp(q.log_std)
    return grads


class _LikCache(NamedTuple):
    z: np.ndarray  # (S, n, k)
    u: np.ndarray  # Psi^{-1/2} (x - W z - mu), the whitened residuals, (S, n, d)
    isqrt_psi: np.ndarray  # psi^{-1/2}, (d,)


def _log_lik_forward(model, x, z):
    """log p(x_i | z_si) = log N(x_i; W z_si + mu, diag(psi)), (S, n); (LG.1).

    -1/2 (d log 2 pi + sum_j log psi_j + u^T u), u = Psi^{-1/2} (x - W z - mu).
    Written for speed (this is the linear VAE's inner loop): the only (S, n, d)
    array is u, made by one product [z, 1] [W, mu]^T = W z + mu, then shifted
    and whitened in place; u^T u is one einsum over it.
    """
    S, n, k = z.shape
    d = x.shape[1]
    isqrt_psi = 1.0 / np.sqrt(model.psi)
    z1 = np.concatenate([z, np.ones((S, n, 1))], axis=2).reshape(S * n, k + 1)
    u = z1 @ np.concatenate([model.W, model.mu[:, None]], axis=1).T  # W z + mu
    u = u.reshape(S, n, d)
    np.subtract(x, u, out=u)  # r = x - W z - mu
    u *= isqrt_psi  # u = Psi^{-1/2} r
    value = _log_prob_whitened(u, np.sum(np.log(model.psi)))
    return value, _LikCache(z, u, isqrt_psi)


def _log_lik_backward(model, cache, c, per_sample):
    """Gradients of sum_si c_si log p(x_i | z_si) w.r.t. z and (W, mu, psi).

    With Pr = Psi^{-1} r = Psi^{-1/2} u:  d/dz = W^T Pr,  d/dW = Pr z^T,
    d/dmu = Pr,  d/dpsi_j = -1/2 (1 / psi_j - Pr_j^2) = -1/2 (1 - u_j^2) / psi_j.
    The weights c and the factor Psi^{-1/2} go on the small side of each
    product ((S, n, k), (d, k) or (d,)), never on the (S, n, d) residuals,
    which are only read: by two matrix products and one einsum.
    """
    z, u, isqrt_psi = cache
    S, n, k = z.shape
    d = u.shape[-1]
    u2 = u.reshape(S * n, d)
    g_z = c[..., None] * (u2 @ (isqrt_psi[:, None] * model.W)).reshape(S, n, k)
    if per_sample:
        cz = c[..., None] * z
        dW = isqrt_psi[:, None] * np.einsum("snd,snk->sdk", u, cz)
        dmu = isqrt_psi * np.einsum("sn,snd->sd", c, u)
        sq = np.einsum("sn,snd,snd->sd", c, u, u)
        dpsi = -0.5 * (c.sum(axis=1)[:, None] - sq) / model.psi
    else:
        c2 = c.reshape(S * n)
        # one product [c z, c]^T u = [(Psi^{1/2} dW)^T; Psi^{1/2} dmu]: the fast layout
        cz1 = np.concatenate([c[..., None] * z, c[..., None]], axis=2)
        zu = cz1.reshape(S * n, k + 1).T @ u2
        dW = zu[:k].T * isqrt_psi[:, None]
        dmu = zu[k] * isqrt_psi
        # sum_n c_n u_nj^2: equal weights (the default dout) factor out of the
        # sum, and the unweighted einsum is 2.5x faster than the weighted one
        if np.all(c2 == c2[0]):
            sq = c2[0] * np.einsum("nd,nd->d", u2, u2)
        else:
            sq = np.einsum("n,nd,nd->d", c2, u2, u2)
        dpsi = -0.5 * (c2.sum() - sq) / model.psi
    return g_z, {"W": dW, "mu": dmu, "psi": dpsi}


def _log_prior(z):
    """log N(z_si; 0, I), (S, n); (LG.1). Its gradient is -z."""
    return gaussian.log_prob(gaussian.standard_normal(z.shape[-1]), z)


#: refvi.gaussian's parameter names -> the estimators' names for q's.
_Q_KEYS = {"mean": "m_q", "log_std": "log_std_q", "scale_tril": "L_q"}


def _q_dist(q, S=None):
    """q_i as a batch (n,) of ``gaussian.Gaussian``; with ``S``, broadcast to a
    batch (S, n) so that gradients come per sample (S, n, k) / (S, 1, k, k)."""
    m = q.m if S is None else np.broadcast_to(q.m, (S,) + q.m.shape)
    if q.L is not None:
        L = q.L if S is None else np.broadcast_to(q.L, (S, 1) + q.L.shape)
        return gaussian.Gaussian(m, scale_tril=L)
    log_std = q.log_std if S is None else np.broadcast_to(q.log_std, m.shape)
    return gaussian.Gaussian(m, log_std=log_std)


def _rename(grads, per_sample, suffix=""):
    """gaussian's q gradients under the estimators' keys, (S, k, k) per sample."""
    out = {}
    for key, name in _Q_KEYS.items():
        if key + suffix in grads:
            g = grads[key + suffix]
            out[name] = g[:, 0] if per_sample and name == "L_q" else g
    return out


def _log_q(q, z):
    """log q_i(z_si) = log N(z_si; m_i, Sigma_i), (S, n); (G.1)."""
    return gaussian.log_prob(_q_dist(q), z)


def _log_q_grads(q, z, c, per_sample):
    """d/dz and the score d/dq (z fixed) of sum_si c_si log q_i(z_si); (G.10)-(G.14)."""
    S = z.shape[0]
    _, g = gaussian.log_prob_and_grad(_q_dist(q, S if per_sample else None), z, c)
    return g["x"], _rename(g, per_sample)


def _analytic_term(q, fn, w, S, per_sample):
    """Gradients w.r.t. q of sum_i w_i T(q_i) for T = KL to N(0, I) or entropy,
    from ``gaussian.kl_and_grad`` (G.9) / ``gaussian.entropy_and_grad`` (G.15);
    per sample, every sample gets the whole term."""
    qd = _q_dist(q)
    if fn == "kl":
        value, g = gaussian.kl_and_grad(qd, gaussian.standard_normal(qd.d), w)
        g = _rename(g, False, "_q")
    else:
        value, g = gaussian.entropy_and_grad(qd, w)
        g = _rename(g, False)
    if per_sample:
        g = {key: np.broadcast_to(v, (S,) + v.shape) for key, v in g.items()}
    return value, g


def _weights(dout, S, per_sample):
    """c_si: each sample's share of dout_i (1/S of it, or all of it per sample)."""
    return np.broadcast_to(dout if per_sample else dout / S, (S, dout.shape[0]))


def _mean(values, per_sample):
    return values if per_sample else values.mean(axis=0)


# ---------------------------------------------------------------------------
# Estimators.


def elbo_analytic_and_grad(model, x, q, dout=None):
    """The closed-form ELBO_i and gradients, ``linear_gaussian.elbo_and_grad``.

    Implements (LG.10)-(LG.14); keys ``m_q``, ``log_std_q`` or ``L_q``, ``W``,
    ``mu``, ``psi``.
    """
    x, q, _, dout = _check(model, x, q, None, dout, need_eps=False)
    return _analytic(model, x, q, None, dout)


REPARAM_FORMS = ("kl", "entropy", "sampled")


def elbo_reparam_and_grad(model, x, q, eps, *, form="kl", dout=None, per_sample=False):
    """Reparameterization (pathwise) estimate of ELBO_i and its gradients.

    Implements derivations/reparameterization.md (RP.1)-(RP.3).

    With z_s = m + L eps_s (G.4) and f the sampled part, the value is
    (1/S) sum_s f(z_s) (+ the analytic part) and the gradient the exact
    gradient of that value at fixed eps:

    - ``"kl"`` (SGVB-B): f = log p(x | z), minus KL(q || N(0, I)) (G.9),
      the split of F in derivations/elbo_surgery.md (ES.1);
    - ``"entropy"``: f = log p(x, z), plus H[q] (G.7);
    - ``"sampled"`` (SGVB-A): f = log p(x, z) - log q(z), its q gradient the
      pathwise part plus the score term -d/dq log q(z) at fixed z.

    Parameters
    ----------
    model : LinearGaussian
    x : array_like, shape (n, d)
    q : QParams
    eps : array_like, shape (S, n, k)
        Standard-normal noise.
    form : {"kl", "entropy", "sampled"}
    dout : array_like, shape (n,), optional
    per_sample : bool
        Return each sample's value (S, n) and gradients (leading axis S).
    """
    if form not in REPARAM_FORMS:
        raise ValueError(f"form must be one of {REPARAM_FORMS}; got {form!r}")
    x, q, eps, dout = _check(model, x, q, eps, dout)
    return _reparam(
        model,
        x,
        q,
        eps,
        dout,
        form=form,
        per_sample=per_sample,
        score=form == "sampled",
    )


def elbo_path_derivative_and_grad(model, x, q, eps, *, dout=None, per_sample=False):
    """Path-derivative ("sticking the landing") estimate (Roeder et al. 2017).

    Implements derivations/reparameterization.md (RP.6).

    Value as SGVB-A, (1/S) sum_s [log p(x, z_s) - log q(z_s)]; the gradient
    w.r.t. q is the pathwise gradient of log p(x, z) - log q_stop(z) with the
    score term (mean zero) dropped: (d/dz log p(x, z) - d/dz log q(z)) dz/dq.
    At q = p(z | x) the bracket is zero for every z, so the estimator has zero
    variance. Arguments as in :func:`elbo_reparam_and_grad`.
    """
    x, q, eps, dout = _check(model, x, q, eps, dout)
    return _reparam(
        model, x, q, eps, dout, form="sampled", per_sample=per_sample, score=False
    )


def _reparam(model, x, q, eps, dout, *, form, per_sample, score):
    S = eps.shape[0]
    c = _weights(dout, S, per_sample)
    z = _sample(q, eps)
    f, lik_cache = _log_lik_forward(model, x, z)
    g_z, grads = _log_lik_backward(model, lik_cache, c, per_sample)
    if form in ("entropy", "sampled"):
        f = f + _log_prior(z)
        g_z = g_z - c[..., None] * z  # d/dz log N(z; 0, I) = -z
    if form == "sampled":
        f = f - _log_q(q, z)
        g_zq, score_grads = _log_q_grads(q, z, c, per_sample)
        g_z = g_z - g_zq
    grads.update(_pathwise(q, eps, g_z, per_sample))
    value = _mean(f, per_sample)
    if form in ("kl", "entropy"):
        sign = -1.0 if form == "kl" else 1.0
        term, dterm = _analytic_term(q, form, sign * dout, S, per_sample)
        value = value + sign * term
        for key, g in dterm.items():
            grads[key] = grads[key] + g
    elif score:
        for key, g in score_grads.items():
            grads[key] = grads[key] - g
    return value, grads


def elbo_score_and_grad(
    model, x, q, eps, *, baseline=None, dout=None, per_sample=False
):
    """Score-function (REINFORCE) estimate of ELBO_i and its gradients.

    Implements derivations/reparameterization.md (RP.4)-(RP.5).

    With f(z) = log p(x, z) - log q(z) and z_s = m + L eps_s:

        value   = (1/S) sum_s f(z_s),
        d/dq    = (1/S) sum_s (f(z_s) - b) d/dq log q(z_s)   (z held fixed),
        d/dtheta = (1/S) sum_s d/dtheta log p(x | z_s).

    Unbiased for the gradient of ELBO_i because E_q[d/dq log q] = 0 and the
    baseline ``b`` (n,) does not depend on eps (default 0).
    Arguments as in :func:`elbo_reparam_and_grad`.
    """
    x, q, eps, dout = _check(model, x, q, eps, dout)
    n = x.shape[0]
    b = (
        np.zeros(n)
        if baseline is None
        else as_float_array(baseline, "baseline", shape=(n,))
    )
    return _score(model, x, q, eps, dout, per_sample, b)


def _score(model, x, q, eps, dout, per_sample=False, b=0.0):
    S = eps.shape[0]
    c = _weights(dout, S, per_sample)
    z = _sample(q, eps)
    log_lik, lik_cache = _log_lik_forward(model, x, z)
    f = log_lik + _log_prior(z) - _log_q(q, z)
    _, grads = _log_lik_backward(model, lik_cache, c, per_sample)
    _, score_grads = _log_q_grads(q, z, c * (f - b), per_sample)
    grads.update(score_grads)
    return _mean(f, per_sample), grads


def iwae_and_grad(model, x, q, eps, *, dout=None):
    """Importance-weighted bound (Burda et al. 2016) and its reparameterized gradient.

    Implements derivations/reparameterization.md (RP.7) (K = 1 is SGVB-A).

    With K = S samples z_s = m + L eps_s and log w_s = log p(x, z_s) - log q(z_s):

        IWAE_K = logsumexp_s(log w_s) - log K,
        d IWAE_K = sum_s wtilde_s d log w_s,   wtilde = softmax_s(log w_s),

    where d log w_s is the SGVB-A gradient of sample s (pathwise plus score
    term). IWAE_1 is the SGVB-A estimate; E IWAE_K increases with K to
    log p(x). Returns value (n,) and grads as the other estimators.
    """
    x, q, eps, dout = _check(model, x, q, eps, dout)
    return _iwae(model, x, q, eps, dout)


def _iwae(model, x, q, eps, dout):
    K = eps.shape[0]
    z = _sample(q, eps)
    log_lik, lik_cache = _log_lik_forward(model, x, z)
    log_w = log_lik + _log_prior(z) - _log_q(q, z)
    c = dout * softmax(log_w, axis=0)
    g_z, grads = _log_lik_backward(model, lik_cache, c, False)
    g_z = g_z - c[..., None] * z
    g_zq, score_grads = _log_q_grads(q, z, c, False)
    grads.update(_pathwise(q, eps, g_z - g_zq, False))
    for key, g in score_grads.items():
        grads[key] = grads[key] - g
    return logsumexp(log_w, axis=0) - np.log(K), grads


#: The estimators by name, each ``f(model, x, q, eps, *, dout=None, per_sample=False)``.
ESTIMATORS = {
    "kl": partial(elbo_reparam_and_grad, form="kl"),
    "entropy": partial(elbo_reparam_and_grad, form="entropy"),
    "sampled": partial(elbo_reparam_and_grad, form="sampled"),
    "path": elbo_path_derivative_and_grad,
    "score": elbo_score_and_grad,
}


def _analytic(model, x, q, eps, dout):
    if q.L is not None:
        return lg.elbo_and_grad(model, x, q.m, q.L, dout=dout)
    return lg.elbo_and_grad(model, x, q.m, log_std_q=q.log_std, dout=dout)


#: The kernels behind every estimator, ``f(model, x, q, eps, dout)`` on
#: checked arguments (``dout`` an array): for callers that validated already.
KERNELS = {
    "analytic": _analytic,
    "kl": partial(_reparam, form="kl", per_sample=False, score=False),
    "entropy": partial(_reparam, form="entropy", per_sample=False, score=False),
    "sampled": partial(_reparam, form="sampled", per_sample=False, score=True),
    "path": partial(_reparam, form="sampled", per_sample=False, score=False),
    "score": _score,
    "iwae": _iwae,
}
