"""Amortized linear Gaussian encoder q_phi(z | x) = N(A x + c, Sigma_q(x)).

Three forms of the covariance, batched over data x (n, d):

- diagonal, shared: Sigma_q = diag(exp(2 log_std)), ``log_std`` (k,), the
  encoder of the linear VAE of Lucas et al. (2019), "Don't Blame the ELBO";
- diagonal, data-dependent: log_std(x) = B x + log_std, a second linear map
  ``B`` (k, d);
- full, shared: Sigma_q = L L^T, ``L`` (k, k) lower Cholesky factor.

:func:`encode` is the forward pass, giving the per-datum variational
parameters ``QParams(m, log_std, L)``; :func:`encode_backward` right under it
takes the gradients w.r.t. those (keys ``m_q`` and ``log_std_q`` or ``L_q``,
as returned by ``refvi.models.linear_gaussian.elbo_and_grad`` and the
estimators) and returns the gradients w.r.t. the encoder's parameters
(keys ``A, c`` and ``log_std`` [, ``B``] or ``L``).
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from refvi._validate import (
    as_data,
    as_float_array,
    check_instance,
    check_lower_cholesky,
    read_only_copy,
)
from refvi.models import linear_gaussian as lg

__all__ = [
    "LinearEncoder",
    "QParams",
    "check_encoder",
    "encode",
    "encode_backward",
    "exact_posterior_encoder",
]


@dataclass(frozen=True, eq=False)
class LinearEncoder:
    """q_phi(z | x) = N(A x + c, Sigma_q(x)).

    Parameters
    ----------
    A : array_like, shape (k, d)
        Mean map.
    c : array_like, shape (k,)
        Mean offset.
    log_std : array_like, shape (k,), optional
        Log standard deviations of a diagonal Sigma_q (the offset of the
        data-dependent log-std when ``B`` is given).
    L : array_like, shape (k, k), optional
        Lower Cholesky factor of a full, shared Sigma_q = L L^T.
    B : array_like, shape (k, d), optional
        Data-dependent log-std map: log_std(x) = B x + log_std (diagonal only).

    Exactly one of ``log_std`` and ``L`` is given. All arrays are stored as
    read-only float64 copies; invalid input raises ValueError naming the argument.
    """

    A: np.ndarray
    c: np.ndarray
    log_std: np.ndarray = None
    L: np.ndarray = None
    B: np.ndarray = None

    def __post_init__(self):
        A = as_float_array(self.A, "A", ndim=2)
        k, d = A.shape
        fields = {"A": A, "c": as_float_array(self.c, "c", shape=(k,))}
        if (self.log_std is None) == (self.L is None):
            raise ValueError("give exactly one of log_std (diagonal) and L (full)")
        if self.log_std is not None:
            fields["log_std"] = as_float_array(self.log_std, "log_std", shape=(k,))
        else:
            fields["L"] = check_lower_cholesky(self.L, "L", d=k)
        if self.B is not None:
            if self.L is not None:
                raise ValueError("B (data-dependent log-std) needs log_std, not L")
            fields["B"] = as_float_array(self.B, "B", shape=(k, d))
        for name, value in fields.items():
            object.__setattr__(self, name, read_only_copy(value))

    @property
    def k(self):
        """Latent dimension."""
        return self.A.shape[0]

    @property
    def d(self):
        """Data dimension."""
        return self.A.shape[1]

    @property
    def params(self):
        """The parameters as a dict of arrays (the keys of the gradients)."""
        names = ("A", "c", "log_std", "L", "B")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


class QParams(NamedTuple):
    """Per-datum variational parameters q_i = N(m_i, Sigma_i).

    Attributes
    ----------
    m : ndarray, shape (n, k)
        Means.
    log_std : ndarray, shape (n, k), or None
        Log standard deviations of a diagonal Sigma_i.
    L : ndarray, shape (k, k), or None
        Lower Cholesky factor of a full Sigma shared by all data points.
    """

    m: np.ndarray
    log_std: np.ndarray = None
    L: np.ndarray = None


def check_encoder(encoder, name="encoder"):
    """Raise TypeError unless ``encoder`` is a LinearEncoder."""
    if not isinstance(encoder, LinearEncoder):
        raise TypeError(f"{name} must be a LinearEncoder; got {type(encoder).__name__}")
    return encoder


def encode(encoder, x):
    """Forward pass: q_i = N(A x_i + c, Sigma_q(x_i)) for each row of ``x`` (n, d).

    Returns
    -------
    QParams
        ``m = x A^T + c`` (n, k); ``log_std = x B^T + log_std`` (n, k), or the
        shared ``log_std`` broadcast to (n, k), or the shared ``L``.
    """
    check_encoder(encoder)
    x = as_data(x, encoder.d)
    return _encode(encoder, x)


def _encode(encoder, x):
    """:func:`encode` without argument checking."""
    m = x @ encoder.A.T + encoder.c
    if encoder.L is not None:
        return QParams(m, None, encoder.L)
    if encoder.B is not None:
        return QParams(m, x @ encoder.B.T + encoder.log_std)
    return QParams(m, np.broadcast_to(encoder.log_std, m.shape))


def _check_grads_q(encoder, grads_q, n):
    """``grads_q`` with its arrays checked against the outputs of :func:`encode`."""
    check_instance(grads_q, dict, "grads_q")
    k = encoder.k
    shapes = {"m_q": (n, k)}
    shapes.update({"L_q": (k, k)} if encoder.L is not None else {"log_std_q": (n, k)})
    missing = sorted(set(shapes) - set(grads_q))
    if missing:
        raise ValueError(
            f"grads_q must have the keys {sorted(shapes)}; missing {missing}"
        )
    return {
        key: as_float_array(grads_q[key], f"grads_q[{key!r}]", shape=shape)
        for key, shape in shapes.items()
    }


def encode_backward(encoder, x, grads_q):
    """Backward pass of :func:`encode`: gradients w.r.t. the encoder's parameters.

    Implements derivations/reparameterization.md (RP.8).

    Parameters
    ----------
    encoder : LinearEncoder
    x : ndarray, shape (n, d)
    grads_q : dict
        ``m_q`` (n, k) and ``log_std_q`` (n, k) or ``L_q`` (k, k): the
        gradients of a scalar objective w.r.t. the outputs of :func:`encode`.

    Returns
    -------
    dict
        ``A = dm^T x``, ``c = sum_i dm_i``; ``log_std = sum_i dlog_std_i``
        and ``B = dlog_std^T x``, or ``L = dL_q``.
    """
    check_encoder(encoder)
    x = as_data(x, encoder.d)
    return _encode_backward(encoder, x, _check_grads_q(encoder, grads_q, x.shape[0]))


def _encode_backward(encoder, x, grads_q):
    """:func:`encode_backward` without argument checking."""
    dm = grads_q["m_q"]
    grads = {"A": dm.T @ x, "c": dm.sum(axis=0)}
    if encoder.L is not None:
        grads["L"] = grads_q["L_q"]
        return grads
    dlog_std = grads_q["log_std_q"]
    grads["log_std"] = dlog_std.sum(axis=0)
    if encoder.B is not None:
        grads["B"] = dlog_std.T @ x
    return grads


def exact_posterior_encoder(model):
    """The encoder whose q(z | x) is the exact posterior p(z | x) of ``model``.

    From derivations/linear_gaussian.md (LG.5)-(LG.6): p(z | x) = N(A (x - mu), S)
    with A = S W^T Psi^{-1}; so A, c = -A mu and L = chol(S). The rows of A
    are read off the posterior means of x = mu + e_j.
    """
    check_instance(model, lg.LinearGaussian, "model")
    post = lg.posterior(model, model.mu + np.eye(model.d))
    A = post.m.T
    return LinearEncoder(A, -A @ model.mu, L=post.L_S)
