"""Error bounds of ``Measured`` values through the functions of the check language.

A check may apply ``np.log``, ``np.sum``, ``np.concatenate``, ... to a
quadrature result (a ``refvi.checker.measured.Measured``). Each function of
the check language (``refvi.checker.evaluate``) names its *family* here, and
the family says how a bound ``e`` on the absolute error of each argument
becomes a bound on the error of the result, so no error estimate is dropped:

- ``"elementwise"`` (exp, log, sqrt, abs, log1p, expm1, square, tanh): the
  largest change of f over the interval [v - e, v + e], taken at its ends
  (each of these f is monotone on the interval, or, for abs and square, has
  its largest change at an end); inf when the interval leaves f's domain
  (log, sqrt, log1p of an interval reaching 0, resp. -1).
- ``"lipschitz"`` (maximum, minimum, logaddexp): each changes by at most
  max(e_a, e_b) (1-Lipschitz in the largest coordinate change).
- ``"linear"`` (sum, mean, trace, diagonal, diag, tril, triu, concatenate,
  stack, broadcast_to, swapaxes, transpose, reshape, ...): f(values), with
  the bound f(errors): f is linear with coefficients >= 0, so by the triangle
  inequality the errors add as f adds the values.
- ``"extreme"`` (max, min over an axis): at most the largest error on the axis.
- ``"std"``: |std(v') - std(v)| <= ||v' - v||_2 / sqrt(N - ddof) over the axis
  (centering is a projection), so sqrt(sum e^2 / (N - ddof)).
- ``"multilinear"`` (einsum, outer, and ``@``): with M the same contraction,
  |M(a') - M(a)| <= M(|a| + e) - M(|a|) = the sum, over the non-empty sets S
  of measured operands, of M with e in S and |a| elsewhere (expanded, so no
  difference of large numbers loses the bound).
- ``"exact"`` (zeros_like, ones_like): the result does not depend on the
  values; exact.
- ``"arithmetic"`` (the builtins ``sum`` and ``abs``): only ``+`` and
  ``abs`` of ``Measured`` values, which carry the bound themselves.

A function with no family (``np.linalg.*``, ``float``, ...) refuses a
``Measured`` argument with a message naming it (``Unpropagated``: the check
reaches outside the language, which the checker reports as unsupported).
"""

import itertools

import numpy as np

from refvi.checker.measured import Measured, Unpropagated


def contains_measured(value):
    """True if ``value`` is a ``Measured`` or a list/tuple holding one."""
    if isinstance(value, Measured):
        return True
    if isinstance(value, list | tuple):
        return any(contains_measured(v) for v in value)
    return False


def _values(arg):
    """``arg`` with every ``Measured`` replaced by its value."""
    if isinstance(arg, Measured):
        return arg.value
    if isinstance(arg, list | tuple):
        return type(arg)(_values(a) for a in arg)
    return arg


def _errors(arg):
    """``arg`` with every ``Measured`` replaced by its error and every exact
    number or array by zeros of its shape."""
    if isinstance(arg, Measured):
        return arg.error
    if isinstance(arg, list | tuple):
        return type(arg)(_errors(a) for a in arg)
    return np.zeros(np.shape(arg))


def elementwise(fn, m):
    """f(v) and the largest |f(v +- e) - f(v)| (inf outside the domain)."""
    with np.errstate(all="ignore"):
        value = fn(m.value)
        ends = [np.abs(fn(m.value + s * m.error) - value) for s in (-1.0, 1.0)]
        error = np.maximum(*ends)
    error = np.where(np.isfinite(error), error, np.inf)
    return Measured(value, np.where(m.error == 0, 0.0, error))


def lipschitz(fn, *args):
    """f(a, b) with the bound max(e_a, e_b)."""
    value = fn(*_values(args))
    error = np.maximum(*np.broadcast_arrays(*_errors(args)))
    return Measured(value, np.broadcast_to(error, np.shape(value)))


def linear(fn, args, kwargs):
    """f(values) with the bound f(errors), f linear with coefficients >= 0 in
    its first argument (the others are axes, offsets, shapes)."""
    (data, *rest) = args
    value = fn(_values(data), *rest, **kwargs)
    error = fn(_errors(data), *rest, **kwargs)
    return Measured(value, error)


def extreme(fn, args, kwargs):
    """max or min over an axis: the bound is the largest error on the axis."""
    (m, *rest) = args
    value = fn(m.value, *rest, **kwargs)
    error = np.max(m.error, *rest, **kwargs)
    return Measured(value, error)


def std(fn, args, kwargs):
    """std over an axis: the bound sqrt(sum e^2 / (N - ddof))."""
    (m, *rest) = args
    axis = rest[0] if rest else kwargs.get("axis")
    ddof = kwargs.get("ddof", 0)
    value = fn(m.value, *rest, **kwargs)
    count = m.value.size if axis is None else m.value.shape[axis]
    keepdims = kwargs.get("keepdims", False)
    with np.errstate(divide="ignore"):
        error = np.sqrt(
            np.sum(m.error**2, axis=axis, keepdims=keepdims) / (count - ddof)
        )
    return Measured(value, error)


def multilinear(fn, args, kwargs):
    """A product or contraction of its operands (the first may be an einsum
    subscript string), with the bound expanded over sets of measured operands."""
    start = 1 if args and isinstance(args[0], str) else 0
    head, operands = list(args[:start]), list(args[start:])
    value = fn(*head, *_values(operands), **kwargs)
    measured = [i for i, a in enumerate(operands) if isinstance(a, Measured)]
    magnitude = [np.abs(_values(a)) for a in operands]
    error = np.zeros(np.shape(value))
    for size in range(1, len(measured) + 1):
        for subset in itertools.combinations(measured, size):
            parts = [
                operands[i].error if i in subset else magnitude[i]
                for i in range(len(operands))
            ]
            error = error + fn(*head, *parts, **kwargs)
    return Measured(value, error)


def matmul(a, b):
    """``a @ b`` with the multilinear bound."""
    return multilinear(lambda x, y: x @ y, (a, b), {})


def exact(fn, args, kwargs):
    """A function of shapes only: the values' result, exact."""
    return fn(*_values(args), **kwargs)


def call(family, name, fn, args, kwargs):
    """``fn(*args, **kwargs)`` with ``Measured`` arguments, by ``family``.

    Raises ``Unpropagated`` naming ``name`` when it has no family (its result
    could not carry the error estimate) or the arguments are not in the
    family's form.
    """
    if family is None:
        raise Unpropagated(
            f"{name} does not take a measured value (a quadrature result with an "
            "error estimate): its error estimate could not be carried through"
        )
    if family == "elementwise":
        if len(args) != 1 or kwargs:
            raise Unpropagated(f"{name} takes one measured argument")
        return elementwise(fn, args[0])
    if family == "lipschitz":
        return lipschitz(fn, *args)
    if family == "arithmetic":
        return fn(*args, **kwargs)
    data = family in ("linear", "extreme", "std")
    if data and contains_measured((*args[1:], *kwargs.values())):
        raise Unpropagated(f"{name} takes a measured value as its first argument only")
    if family in ("extreme", "std") and not isinstance(args[0], Measured):
        raise Unpropagated(f"{name} takes the measured value first")
    rules = {"linear": linear, "extreme": extreme, "std": std,
             "multilinear": multilinear, "exact": exact}  # fmt: skip
    return rules[family](fn, args, kwargs)
