"""Categorical distributions in logits, with handwritten gradients.

A categorical over K outcomes is given by a logits array of shape (..., K)
(any leading batch shape, K >= 1): p = softmax(logits) along the last axis.
Everything is computed from ``log_softmax``, which subtracts the row maximum
before exponentiating, so logits of magnitude 1e3 give finite, accurate values
and gradients. Logits must be finite: a zero probability (a logit of -inf) is
not allowed as input; use a large negative finite logit instead.

Every value ``f`` has ``f_and_grad(..., dout=None)`` beside it returning
``(value, {"logits": ...})``; ``dout`` has the value's shape (default ones) and
the gradients are those of ``sum(dout * value)``. Arguments broadcast over the
batch axes; a gradient is summed back to its argument's shape. Values are
always arrays (0-d for a single distribution). Derivations:
``derivations/categorical.md`` (C.n).
"""

import numpy as np
from scipy.special import log_softmax as _scipy_log_softmax

from refvi._batch import broadcast_batch, sum_to_shape
from refvi._validate import as_float_array, check_dout

__all__ = [
    "log_softmax",
    "softmax",
    "log_prob",
    "log_prob_and_grad",
    "entropy",
    "entropy_and_grad",
    "kl",
    "kl_and_grad",
]


def _log_softmax(logits):
    """log softmax along the last axis, shifted by the row maximum; no checking."""
    return _scipy_log_softmax(logits, axis=-1)


def _check_logits(logits, name="logits"):
    arr = as_float_array(logits, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have shape (..., K); got a scalar")
    return arr


def log_softmax(logits):
    """log p_j = logits_j - log sum_k exp(logits_k) along the last axis; (C.1)."""
    return _log_softmax(_check_logits(logits))


def softmax(logits):
    """p_j = exp(log_softmax(logits)_j) along the last axis; (C.1)."""
    return np.exp(log_softmax(logits))


def _check_outcomes(logits, k):
    """Outcomes ``k`` as integers in 0..K-1, broadcast with the batch, (..., 1)."""
    K = logits.shape[-1]
    k_arr = np.asarray(k)
    if k_arr.dtype == bool or not np.issubdtype(k_arr.dtype, np.integer):
        raise TypeError(f"k must be an integer array; got dtype {k_arr.dtype}")
    if k_arr.size and (k_arr.min() < 0 or k_arr.max() >= K):
        raise ValueError(
            f"k must lie in 0..{K - 1} (K = {K}); got range "
            f"[{k_arr.min()}, {k_arr.max()}]"
        )
    batch = broadcast_batch(("logits", logits.shape[:-1]), ("k", k_arr.shape))
    if 0 in batch:
        raise ValueError(f"k must not be empty; got shape {k_arr.shape}")
    return np.broadcast_to(k_arr, batch)[..., None]


def _log_prob_forward(logits, k_b):
    """log p_k (C.1) at outcomes ``k_b`` (batch..., 1), and log p."""
    log_p = _log_softmax(logits)
    batch_log_p = np.broadcast_to(log_p, k_b.shape[:-1] + logits.shape[-1:])
    return np.take_along_axis(batch_log_p, k_b, axis=-1)[..., 0], log_p


def log_prob(logits, k):
    """log p_k for outcomes ``k``; (C.1).

    Parameters
    ----------
    logits : array_like, shape (..., K)
    k : array_like of int
        Outcomes in ``0..K-1``; broadcast against ``logits.shape[:-1]``.

    Returns
    -------
    ndarray, the broadcast batch shape
    """
    logits = _check_logits(logits)
    return _log_prob_forward(logits, _check_outcomes(logits, k))[0]


def log_prob_and_grad(logits, k, dout=None):
    """log p_k and the gradient of sum(dout * log p_k) w.r.t. logits; (C.1), (C.4).

    d log p_k / d logits_j = [j = k] - p_j.

    Returns
    -------
    value : ndarray, the broadcast batch shape of ``logits.shape[:-1]`` and ``k``
    grads : dict
        ``{"logits": logits.shape}``.
    """
    logits = _check_logits(logits)
    k_b = _check_outcomes(logits, k)
    value, log_p = _log_prob_forward(logits, k_b)
    dout = check_dout(dout, value.shape)
    # (C.4)  d log p_k / d logits = onehot(k) - p
    onehot = np.arange(logits.shape[-1]) == k_b
    dlogits = dout[..., None] * (onehot - np.exp(log_p))
    return value, {"logits": sum_to_shape(dlogits, logits.shape)}


def _entropy_forward(logits):
    log_p = _log_softmax(logits)
    p = np.exp(log_p)
    # (C.2)  H = -sum_j p_j log p_j   (p_j = 0 contributes 0: log p_j is finite)
    return -np.sum(p * log_p, axis=-1), p, log_p


def entropy(logits):
    """H = -sum_j p_j log p_j along the last axis, shape logits.shape[:-1]; (C.2)."""
    return _entropy_forward(_check_logits(logits))[0]


def entropy_and_grad(logits, dout=None):
    """Entropy (C.2) and the gradient of sum(dout * H) w.r.t. logits (C.5).

    dH / d logits_j = -p_j (log p_j + H).

    Returns
    -------
    value : ndarray, shape logits.shape[:-1]
    grads : dict
        ``{"logits": logits.shape}``.
    """
    logits = _check_logits(logits)
    dout = check_dout(dout, logits.shape[:-1])
    H, p, log_p = _entropy_forward(logits)
    # (C.5)  dH/dlogits_j = -p_j (log p_j + H)
    dlogits = -dout[..., None] * p * (log_p + H[..., None])
    return H, {"logits": dlogits}


def _check_pair(logits_q, logits_p):
    logits_q = _check_logits(logits_q, "logits_q")
    logits_p = _check_logits(logits_p, "logits_p")
    if logits_p.shape[-1] != logits_q.shape[-1]:
        raise ValueError(
            f"logits_p must have K = {logits_q.shape[-1]} categories like "
            f"logits_q; got shape {logits_p.shape}"
        )
    batch = broadcast_batch(
        ("logits_q", logits_q.shape[:-1]), ("logits_p", logits_p.shape[:-1])
    )
    return logits_q, logits_p, batch


def _kl_forward(logits_q, logits_p):
    log_q = _log_softmax(logits_q)
    log_p = _log_softmax(logits_p)
    q = np.exp(log_q)
    # (C.3)  KL = sum_j q_j (log q_j - log p_j)
    log_ratio = log_q - log_p
    return np.sum(q * log_ratio, axis=-1), q, log_p, log_ratio


def kl(logits_q, logits_p):
    """KL(q || p) = sum_j q_j (log q_j - log p_j) along the last axis; (C.3).

    The first argument, q = softmax(logits_q), is the distribution the
    expectation is under, as VI texts write KL(q || p) and as
    :func:`refvi.gaussian.kl` names its arguments; derivations/categorical.md
    writes the same formulas with the letters p and q exchanged. The batch
    shapes broadcast; KL of identical logits is exactly 0.
    """
    logits_q, logits_p, _ = _check_pair(logits_q, logits_p)
    return _kl_forward(logits_q, logits_p)[0]


def kl_and_grad(logits_q, logits_p, dout=None):
    """KL(q || p) (C.3) and the gradients of sum(dout * KL) (C.6)-(C.7).

    The expectation is under the first argument, q (see :func:`kl`):

    d KL / d logits_q_j = q_j (log q_j - log p_j - KL),
    d KL / d logits_p_j = p_j - q_j.

    The batch shapes ``logits_q.shape[:-1]`` and ``logits_p.shape[:-1]``
    broadcast; both must have the same K. KL of identical logits is exactly 0.

    Returns
    -------
    value : ndarray, the broadcast batch shape
    grads : dict
        ``{"logits_q": logits_q.shape, "logits_p": logits_p.shape}``.
    """
    logits_q, logits_p, batch = _check_pair(logits_q, logits_p)
    dout = check_dout(dout, batch)
    value, q, log_p, log_ratio = _kl_forward(logits_q, logits_p)
    # (C.6)  dKL/dlogits_q_j = q_j (log q_j - log p_j - KL)
    dlogits_q = dout[..., None] * q * (log_ratio - value[..., None])
    # (C.7)  dKL/dlogits_p_j = p_j - q_j
    dlogits_p = dout[..., None] * (np.exp(log_p) - q)
    return value, {
        "logits_q": sum_to_shape(dlogits_q, logits_q.shape),
        "logits_p": sum_to_shape(dlogits_p, logits_p.shape),
    }
