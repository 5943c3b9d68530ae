"""A number a check computed by a route with error control, and its error estimate.

An operator that refines a quadrature rule under an error estimate (``E_q``,
``E_post``, ``E_prior``, ``integral`` of the continuous settings, the
``aggregated`` setting's ``E_data``, ``E_model``, ...) returns a ``Measured``
so that the judge (``refvi.checker.judge``) sees the estimate, not only the
value. Arithmetic with exact values and with other ``Measured`` values
propagates a bound on the absolute error, given the bounds ``e_a``, ``e_b``
of its operands:

    e(a +- b) = e_a + e_b,   e(a b) = |a| e_b + |b| e_a + e_a e_b,
    e(a / b) = (|a| e_b + |b| e_a) / (|b| (|b| - e_b))   (inf if |b| <= e_b),
    e(a ** p), e(p ** a): the largest change of the power over a +- e_a
    (inf if the interval reaches a pole or leaves the domain).

An error that cannot be bounded (NaN) is infinite, so the judge reports the
line undetermined rather than deciding on it. Functions of the check language
(``np.log``, ``np.sum``, ``np.concatenate``, ...) propagate the bound by
``refvi.checker.propagate``.

The operators refine until the error estimate is below the *refinement
target*: a tenth of the tolerance of the line being evaluated, set by the
checker around each evaluation with :func:`refinement_target` and read by the
operators with :func:`current_target` (default ``DEFAULT_TARGET``, a tenth of
the default tolerance).
"""

import contextlib
import contextvars

import numpy as np

#: The refinement target when no line sets one: a tenth of the default
#: tolerance 1e-9 of ``refvi verify``.
DEFAULT_TARGET = 1e-10

_TARGET = contextvars.ContextVar("refinement_target", default=DEFAULT_TARGET)


@contextlib.contextmanager
def refinement_target(target):
    """Within the block, operators with error control refine until their error
    estimate is below ``target`` (relative above 1, absolute below)."""
    target = float(target)
    if not target > 0:
        raise ValueError(f"target must be positive; got {target}")
    token = _TARGET.set(target)
    try:
        yield target
    finally:
        _TARGET.reset(token)


def current_target():
    """The refinement target of the evaluation under way (``DEFAULT_TARGET``
    outside one)."""
    return _TARGET.get()


class Unpropagated(TypeError):
    """A ``Measured`` value reached a function that cannot carry its error
    bound (``float``, ``np.linalg.*``, ...)."""


class Measured:
    """A value (array) with an estimate of its absolute numerical error.

    Parameters
    ----------
    value : array_like
    error : array_like
        Elementwise, >= 0, broadcastable to ``value``; NaN is taken as inf
        (an error that cannot be bounded).
    """

    __array_ufunc__ = None  # make `array + measured` call __radd__

    def __init__(self, value, error):
        self.value = np.asarray(value, dtype=np.float64)
        error = np.abs(np.asarray(error, dtype=np.float64))
        error = np.where(np.isnan(error), np.inf, error)
        self.error = np.broadcast_to(error, self.value.shape)

    @staticmethod
    def _parts(other):
        if isinstance(other, Measured):
            return other.value, other.error
        if callable(other):
            raise TypeError("a measured value combines only with numbers")
        return np.asarray(other, dtype=np.float64), 0.0

    @property
    def shape(self):
        return self.value.shape

    @property
    def ndim(self):
        return self.value.ndim

    @property
    def size(self):
        return self.value.size

    def __add__(self, other):
        v, e = self._parts(other)
        return Measured(self.value + v, self.error + e)

    __radd__ = __add__

    def __sub__(self, other):
        v, e = self._parts(other)
        return Measured(self.value - v, self.error + e)

    def __rsub__(self, other):
        v, e = self._parts(other)
        return Measured(v - self.value, self.error + e)

    def __mul__(self, other):
        v, e = self._parts(other)
        error = np.abs(self.value) * e + np.abs(v) * self.error + self.error * e
        return Measured(self.value * v, error)

    __rmul__ = __mul__

    def __truediv__(self, other):
        v, e = self._parts(other)
        return _divide(self.value, self.error, v, e)

    def __rtruediv__(self, other):
        v, e = self._parts(other)
        return _divide(v, e, self.value, self.error)

    def __pow__(self, other):
        v, e = self._parts(other)
        return _power(self.value, self.error, v, e)

    def __rpow__(self, other):
        v, e = self._parts(other)
        return _power(v, e, self.value, self.error)

    def __neg__(self):
        return Measured(-self.value, self.error)

    def __pos__(self):
        return self

    def __abs__(self):
        # ||a'| - |a|| <= |a' - a|
        return Measured(np.abs(self.value), self.error)

    def __getitem__(self, index):
        return Measured(self.value[index], self.error[index])

    def __float__(self):
        raise Unpropagated(
            "a measured value (a quadrature result) does not become a plain "
            "number: its error estimate would be lost"
        )

    def __repr__(self):
        return f"Measured(value={self.value}, error={self.error})"


def _divide(a, e_a, b, e_b):
    """a / b with |a' / b' - a / b| <= (|a| e_b + |b| e_a) / (|b| (|b| - e_b))
    for |a' - a| <= e_a, |b' - b| <= e_b; inf where b' may be 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = a / b
        room = np.abs(b) - e_b
        error = (np.abs(a) * e_b + np.abs(b) * e_a) / (np.abs(b) * room)
        error = np.where(room > 0, error, np.inf)
    return Measured(value, np.where((e_a == 0) & (e_b == 0), 0.0, error))


def _power(a, e_a, p, e_p):
    """a ** p with its largest change over the box a +- e_a, p +- e_p.

    For a > 0 the power is monotone in each argument on the box, so its
    extremes are at the corners; a box that reaches a <= 0 with a negative
    or non-integer exponent (a pole, or outside the domain) has error inf.
    With an exact integer exponent p > 0 the extremes of |a'^p - a^p| are
    also at the corners a +- e_a.
    """
    a, e_a, p, e_p = np.broadcast_arrays(*map(np.asarray, (a, e_a, p, e_p)))
    with np.errstate(all="ignore"):
        value = a**p
        corners = [
            np.abs((a + s * e_a) ** (p + t * e_p) - value)
            for s in (-1, 1)
            for t in (-1, 1)
        ]
        error = np.max(corners, axis=0)
    integer_power = (e_p == 0) & (p == np.round(p)) & (p > 0)
    safe = (a - e_a > 0) | integer_power
    error = np.where(safe, error, np.inf)
    return Measured(value, np.where((e_a == 0) & (e_p == 0), 0.0, error))
