"""Deterministic expectations and integrals, each with an error estimate.

* :func:`expect_gaussian`, :func:`log_expect_gaussian`: expectations under
  ``N(mean, L L^T)`` by tensor-product Gauss-Hermite quadrature (dimension 1-4),
  the error estimated by comparing two orders; :func:`expect_gaussian_refined`
  raises the order until the estimate is below a target or a budget is spent;
* :func:`integrate`: integrals over R^d (d = 1, 2) by adaptive QUADPACK
  quadrature after an affine change of variables;
* :func:`expect_discrete`: exact sums over the categories of a discrete
  variable.

Every function returns ``QuadResult(value, error)``. Integrands are vectorized:
``f(z)`` takes points ``z`` of shape ``(m, d)`` (categories of shape ``(K,)``
for :func:`expect_discrete`) and returns shape ``(m,)`` or ``(m, ...)``.
"""

from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp, roots_hermitenorm

from refvi._validate import (
    as_float_array,
    check_callable,
    check_float,
    check_int,
    check_lower_cholesky,
    check_positive,
)

__all__ = [
    "DEFAULT_ORDER",
    "QuadResult",
    "gauss_hermite_rule",
    "expect_gaussian",
    "expect_gaussian_refined",
    "log_expect_gaussian",
    "integrate",
    "expect_discrete",
]

#: Default Gauss-Hermite order per coordinate for each dimension d: the
#: returned value uses this order, the error estimate compares it with a lower
#: one (:func:`_lower_order`). m = order^d nodes: 60, 1024, 8000, 38416.
DEFAULT_ORDER = {1: 60, 2: 32, 3: 20, 4: 14}


class QuadResult(NamedTuple):
    """A quadrature value and an estimate of its absolute error.

    Attributes
    ----------
    value : float or ndarray
        The integral or expectation (an array when the integrand is).
    error : float or ndarray
        Estimated absolute error of ``value`` (see each function for how it is
        obtained); elementwise when ``value`` is an array, except for
        :func:`integrate`.
    """

    value: object
    error: object


def gauss_hermite_rule(order, d):
    """Tensor-product Gauss-Hermite rule for the standard normal measure N(0, I_d).

    Built from the probabilists' Hermite rule
    (``scipy.special.roots_hermitenorm``, accurate to thousands of nodes,
    where ``numpy``'s ``hermegauss`` overflows above about 400) with weights
    normalised to sum to 1, so ``sum_i w_i g(u_i) = E_{u~N(0,I)} g(u)`` exactly
    for every polynomial ``g`` of degree <= ``2 * order - 1`` in each
    coordinate.

    Parameters
    ----------
    order : int
        Number of nodes per coordinate (>= 1).
    d : int
        Dimension, 1 to 4.

    Returns
    -------
    nodes : ndarray of shape (order**d, d)
    weights : ndarray of shape (order**d,)
        Positive, summing to 1.
    """
    order = check_int(order, "order", minimum=1)
    d = check_int(d, "d")
    if not 1 <= d <= 4:
        raise ValueError(
            f"d must be between 1 and 4 for a tensor-product rule; got {d}"
        )
    x, w = roots_hermitenorm(order)
    w = w / np.sum(w)
    grids = np.meshgrid(*([x] * d), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=1)
    weights = np.prod(np.meshgrid(*([w] * d), indexing="ij"), axis=0).ravel()
    return nodes, weights


def _lower_order(order):
    """The lower order of the error estimate: ``order - max(1, order // 3)``."""
    return order - max(1, order // 3)


def _gaussian_nodes(mean, L, order):
    """Validated nodes ``z = mean + u L^T`` and weights at two orders (low, high)."""
    mean = as_float_array(mean, "mean", ndim=1)
    d = mean.shape[0]
    if not 1 <= d <= 4:
        raise ValueError(
            f"mean must have length 1 to 4 for tensor-product quadrature; got {d}"
        )
    L = check_lower_cholesky(L, "L", d)
    order = DEFAULT_ORDER[d] if order is None else check_int(order, "order", minimum=2)
    rules = []
    for n in (_lower_order(order), order):
        u, w = gauss_hermite_rule(n, d)
        rules.append((mean + u @ L.T, w))
    return rules


def _evaluate(f, z, name, allow_neginf=False):
    """``f(z)`` as a finite float array whose first axis matches the points ``z``.

    A NaN or an infinity (``-inf`` allowed with ``allow_neginf``, a log of 0)
    raises ValueError naming ``f``: a sum through it would be NaN or inf.
    """
    values = np.asarray(check_callable(f, name)(z), dtype=float)
    if values.ndim == 0 or values.shape[0] != z.shape[0]:
        raise ValueError(
            f"{name} must return an array of shape (m, ...) for points of shape "
            f"{z.shape}; got shape {values.shape}"
        )
    bad = np.isnan(values) | (values == np.inf)
    if not allow_neginf:
        bad |= values == -np.inf
    if np.any(bad):
        at = np.asarray(z[np.argwhere(bad)[0][0]]).tolist()
        raise ValueError(
            f"{name} returned {float(values[bad].flat[0])!r} at {at}; "
            "it must be finite" + (" or -inf" if allow_neginf else "")
        )
    return values


def expect_gaussian(f, mean, L, *, order=None):
    """E_{z ~ N(mean, L L^T)} f(z) by tensor-product Gauss-Hermite quadrature.

    ``E f(z) ~= sum_i w_i f(mean + L u_i)`` with ``(u_i, w_i)`` from
    :func:`gauss_hermite_rule`: exact for polynomials in ``z`` of total degree
    <= ``2 * order - 1`` (for a diagonal ``L``, of that degree in each
    coordinate).

    Parameters
    ----------
    f : callable
        ``f(z)`` with ``z`` of shape ``(m, d)``, returning ``(m,)`` or ``(m, ...)``.
    mean : array_like of shape (d,)
        Mean, 1 <= d <= 4.
    L : array_like of shape (d, d)
        Lower-triangular Cholesky factor of the covariance (positive diagonal);
        a diagonal scale is a diagonal ``L``.
    order : int, optional
        Nodes per coordinate of the returned value (>= 2); default
        ``DEFAULT_ORDER[d]`` (60, 32, 20, 14 for d = 1..4).

    Returns
    -------
    QuadResult
        ``value`` at ``order`` and ``error = |Q_order - Q_lower|`` elementwise,
        with ``lower = order - max(1, order // 3)``. When the rule has
        converged, this overestimates the error of the lower order and hence of
        ``value``; a large ``error`` flags an integrand the rule does not
        resolve (non-smooth, or too heavy- or light-tailed for the nodes).
    """
    (z_lo, w_lo), (z_hi, w_hi) = _gaussian_nodes(mean, L, order)
    q_lo = np.tensordot(w_lo, _evaluate(f, z_lo, "f"), axes=(0, 0))[()]
    q_hi = np.tensordot(w_hi, _evaluate(f, z_hi, "f"), axes=(0, 0))[()]
    return QuadResult(q_hi, np.abs(q_hi - q_lo))


def expect_gaussian_refined(f, mean, L, *, rtol, orders):
    """:func:`expect_gaussian`, the order raised until the error estimate is small.

    Tries each of ``orders`` in turn and stops at the first whose error
    estimate is at most ``rtol * max(1, |value|)`` on every entry; when the
    last order (the budget) does not reach it, returns that order's result, so
    the caller sees an error estimate above ``rtol`` and can decide what it
    means.

    Parameters
    ----------
    f, mean, L
        As in :func:`expect_gaussian`.
    rtol : float
        Target error, relative above 1 and absolute below (> 0).
    orders : sequence of int
        Increasing orders to try (each >= 2); the last is the budget.

    Returns
    -------
    QuadResult
    """
    rtol = check_positive(rtol, "rtol")
    if len(orders) == 0:
        raise ValueError("orders must name at least one order")
    for order in orders:
        result = expect_gaussian(f, mean, L, order=order)
        scale = np.maximum(1.0, np.abs(result.value))
        if np.all(result.error <= rtol * scale):
            break
    return result


def log_expect_gaussian(log_f, mean, L, *, order=None):
    """log E_{z ~ N(mean, L L^T)} exp(log_f(z)) by Gauss-Hermite and logsumexp.

    ``log sum_i w_i exp(log_f(z_i)) = logsumexp_i(log w_i + log_f(z_i))``, for
    integrands such as a likelihood whose values underflow. Nodes, weights and
    orders are those of :func:`expect_gaussian`.

    Parameters
    ----------
    log_f : callable
        ``log_f(z)`` with ``z`` of shape ``(m, d)``, returning ``(m,)`` or
        ``(m, ...)``; ``-inf`` entries (f = 0) are allowed.
    mean, L, order
        As in :func:`expect_gaussian`.

    Returns
    -------
    QuadResult
        ``value`` the log-expectation at ``order``, ``error`` the elementwise
        ``|value - value_lower|``: an absolute error in log space, i.e. about
        the relative error of the expectation itself.
    """
    (z_lo, w_lo), (z_hi, w_hi) = _gaussian_nodes(mean, L, order)
    results = []
    for z, w in ((z_lo, w_lo), (z_hi, w_hi)):
        log_values = _evaluate(log_f, z, "log_f", allow_neginf=True)
        log_w = np.log(w).reshape((-1,) + (1,) * (log_values.ndim - 1))
        results.append(logsumexp(log_values + log_w, axis=0))
    q_lo, q_hi = results
    return QuadResult(q_hi, np.abs(q_hi - q_lo))


#: Half-width (in units of ``scale``) and points per axis of the grid on which
#: :func:`integrate` estimates the size of ``f`` to set absolute tolerances.
_GRID_HALF_WIDTH, _GRID_POINTS = 8.0, 65

#: Smallest relative tolerance QUADPACK accepts without an absolute one.
_EPSREL_MIN = 50 * np.finfo(float).eps


def integrate(f, d, *, center=None, scale=None, epsrel=1e-12, epsabs=0.0):
    """Integral of ``f`` over R^d (d = 1 or 2) by adaptive quadrature.

    With ``z = center + scale * u`` (elementwise),

        int f(z) dz = prod(scale) * int f(center + scale * u) du,

    computed by ``scipy.integrate.quad`` over (-inf, inf) (nested for d = 2:
    outer over ``u_1``, inner over ``u_2``). Put ``center`` near the mass of
    ``f`` and ``scale`` at its width: QUADPACK's map of the infinite line
    samples ``u`` near 0 most densely and can miss a narrow peak far away.
    QUADPACK calls ``f`` one point at a time (``z`` of shape ``(1, d)``); a 2-d
    integral at ``epsrel=1e-12`` takes about 1e5 calls.

    Tolerances: each QUADPACK call uses ``epsrel`` and the absolute tolerance
    ``max(epsabs, epsrel * A)``, where ``A`` estimates (on a grid of
    ``center +- 8 scale``) ``int |f|`` for the outer integral and the largest
    inner ``int |f| du_2`` for the inner ones; so an integral that cancels to
    about 0 (an odd integrand) stops at a sensible accuracy.

    Parameters
    ----------
    f : callable
        ``f(z)`` with ``z`` of shape ``(m, d)``, returning shape ``(m,)``.
    d : int
        1 or 2.
    center : array_like of shape (d,), optional
        Default zeros.
    scale : float or array_like of shape (d,), optional
        Positive; default ones.
    epsrel, epsabs : float
        Requested relative and absolute accuracy.

    Returns
    -------
    QuadResult
        ``value`` and ``error``: QUADPACK's estimate of the absolute error.
        For d = 2 it is the outer estimate plus the integral over ``u_1`` of
        the inner estimates (trapezoid rule over the outer evaluation points),
        both times ``prod(scale)``.
    """
    # imported here: scipy.integrate takes about as long to import as the rest
    # of refvi, and only this route needs it
    from scipy import integrate as sp_integrate

    d = check_int(d, "d")
    if d not in (1, 2):
        raise ValueError(f"d must be 1 or 2 for adaptive integration; got {d}")
    epsrel = check_float(epsrel, "epsrel", minimum=0.0)
    epsabs = check_float(epsabs, "epsabs", minimum=0.0)
    if epsabs == 0 and epsrel < _EPSREL_MIN:
        raise ValueError(
            f"epsrel must be >= {_EPSREL_MIN:.3g} (50 machine epsilons, QUADPACK's "
            f"limit) when epsabs is 0; got {epsrel!r}"
        )
    center = np.zeros(d) if center is None else as_float_array(center, "center")
    center = np.broadcast_to(center, (d,)) if center.ndim == 0 else center
    if center.shape != (d,):
        raise ValueError(f"center must have shape ({d},); got {center.shape}")
    scale = np.ones(d) if scale is None else as_float_array(scale, "scale")
    scale = np.broadcast_to(scale, (d,)) if scale.ndim == 0 else scale
    if scale.shape != (d,) or np.any(scale <= 0):
        raise ValueError(f"scale must be positive with shape ({d},); got {scale}")

    def g(u):
        """f in the u coordinates, vectorized over u of shape (m, d)."""
        return _evaluate(f, center + scale * u, "f")

    # size of |f| on a grid, for the absolute tolerances
    t = np.linspace(-_GRID_HALF_WIDTH, _GRID_HALF_WIDTH, _GRID_POINTS)
    du = t[1] - t[0]
    grid = np.stack([a.ravel() for a in np.meshgrid(*([t] * d), indexing="ij")], 1)
    abs_g = np.abs(g(grid)).reshape((_GRID_POINTS,) * d)
    if abs_g.ndim != d:
        raise ValueError(f"f must return shape (m,); got {abs_g.shape[d:]} per point")
    tol_outer = max(epsabs, epsrel * np.sum(abs_g) * du**d)
    jac = float(np.prod(scale))
    if d == 1:
        value, err = sp_integrate.quad(
            lambda u: g(np.array([[u]]))[0],
            -np.inf,
            np.inf,
            epsabs=tol_outer,
            epsrel=epsrel,
        )
        return QuadResult(jac * value, jac * err)

    tol_inner = max(epsabs, epsrel * np.max(np.sum(abs_g, axis=1)) * du)
    inner_errors = {}

    def inner(u1):
        value, err = sp_integrate.quad(
            lambda u2: g(np.array([[u1, u2]]))[0],
            -np.inf,
            np.inf,
            epsabs=tol_inner,
            epsrel=epsrel,
        )
        inner_errors[u1] = err
        return value

    value, err = sp_integrate.quad(
        inner, -np.inf, np.inf, epsabs=tol_outer, epsrel=epsrel
    )
    u1s = np.array(sorted(inner_errors))
    err += sp_integrate.trapezoid([inner_errors[u] for u in u1s], u1s)
    return QuadResult(jac * value, jac * err)


def expect_discrete(f, probs):
    """E_{k ~ Categorical(probs)} f(k) = sum_k probs[k] f(k), summed exactly.

    Parameters
    ----------
    f : callable
        ``f(k)`` with ``k = arange(K)``, returning shape ``(K,)`` or ``(K, ...)``.
    probs : array_like of shape (K,) or (n, K)
        Non-negative probabilities, each row summing to 1 (to 1e-10); a batch
        of ``n`` distributions gives ``n`` expectations.

    Returns
    -------
    QuadResult
        ``value`` of shape ``f``'s trailing shape (prefixed by ``(n,)`` when
        batched) and ``error`` zeros of that shape: the sum has no
        discretisation error, only floating-point rounding.
    """
    probs = as_float_array(probs, "probs")
    if probs.ndim not in (1, 2):
        raise ValueError(f"probs must have shape (K,) or (n, K); got {probs.shape}")
    if np.any(probs < 0):
        raise ValueError(f"probs must be non-negative; got min {probs.min():.3g}")
    total = np.sum(probs, axis=-1)
    if np.any(np.abs(total - 1) > 1e-10):
        worst = total.flat[np.argmax(np.abs(total - 1))]
        raise ValueError(f"probs must sum to 1 along its last axis; got {worst!r}")
    values = _evaluate(f, np.arange(probs.shape[-1]), "f")
    value = np.tensordot(probs, values, axes=(-1, 0))[()]
    return QuadResult(value, np.zeros_like(value))
