"""A number a check computed by a route with error control, and its error estimate.

An operator that refines a quadrature rule under an error estimate (the
``aggregated`` setting's ``E_data``, ``E_model``, ...) returns a ``Measured``
so that the judge (``refvi.checker.judge``) sees the estimate, not only the
value. Arithmetic with exact values and with other ``Measured`` values
propagates a first-order bound on the absolute error:

    e(a +- b) = e_a + e_b,   e(a b) = |a| e_b + |b| e_a + e_a e_b,
    e(a / c) = e_a / |c| for an exact c.
"""

import numpy as np


class Measured:
    """A value (array) with an estimate of its absolute numerical error.

    Parameters
    ----------
    value : array_like
    error : array_like
        Elementwise, >= 0, broadcastable to ``value``.
    """

    __array_ufunc__ = None  # make `array + measured` call __radd__

    def __init__(self, value, error):
        self.value = np.asarray(value, dtype=np.float64)
        self.error = np.broadcast_to(
            np.abs(np.asarray(error, dtype=np.float64)), self.value.shape
        )

    @staticmethod
    def _parts(other):
        if isinstance(other, Measured):
            return other.value, other.error
        if callable(other):
            raise TypeError("a measured value combines only with numbers")
        return np.asarray(other, dtype=np.float64), 0.0

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
        if isinstance(other, Measured):
            raise TypeError("a measured value divides only by an exact number")
        v, _ = self._parts(other)
        return Measured(self.value / v, self.error / np.abs(v))

    def __neg__(self):
        return Measured(-self.value, self.error)

    def __repr__(self):
        return f"Measured(value={self.value}, error={self.error})"
