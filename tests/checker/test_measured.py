"""Measured values (refvi.checker.measured): the error bound through arithmetic,
checked against the worst case over the corners of the error box."""

import itertools

import numpy as np
import pytest

from refvi.checker.measured import Measured


def corners(a, b, op):
    """The largest |op(a', b') - op(a, b)| over a' = a +- e_a, b' = b +- e_b,
    elementwise."""
    base = op(a.value, b.value)
    return np.max(
        [
            np.abs(op(a.value + s * a.error, b.value + t * b.error) - base)
            for s, t in itertools.product((-1, 1), repeat=2)
        ],
        axis=0,
    )


@pytest.mark.parametrize(
    "op",
    [
        lambda p, q: p + q,
        lambda p, q: p - q,
        lambda p, q: q - p,
        lambda p, q: p * q,
        lambda p, q: p / q,
        lambda p, q: q / p,
        lambda p, q: abs(p) ** q,
    ],
)
def test_error_bound_covers_every_corner(op):
    a = Measured(np.array([1.5, -2.0]), np.array([1e-3, 2e-3]))
    b = Measured(np.array([0.5, 3.0]), 1e-2)
    out = op(a, b)
    np.testing.assert_allclose(out.value, op(a.value, b.value))
    assert np.all(out.error >= corners(a, b, op) - 1e-15)


def test_exact_numbers_scale_and_shift():
    a = Measured(np.array([2.0, 4.0]), 0.1)
    np.testing.assert_allclose((3.0 - a).value, [1.0, -1.0])
    np.testing.assert_allclose((np.array([1.0, 2.0]) + a).value, [3.0, 6.0])
    np.testing.assert_allclose((-2.0 * a).error, 0.2)
    np.testing.assert_allclose((a / -4.0).error, 0.025)
    np.testing.assert_allclose((-a).value, [-2.0, -4.0])
    assert (a - 1.0).error.shape == (2,)


def test_refuses_what_it_cannot_bound():
    a = Measured(1.0, 0.1)
    with pytest.raises(TypeError, match="combines only with numbers"):
        a + (lambda z: z)
    with pytest.raises(TypeError, match="error estimate would be lost"):
        float(a)


def test_division_by_an_interval_holding_zero_is_unbounded():
    a = Measured(np.array([1.0, 1.0]), 0.1)
    b = Measured(np.array([0.05, 2.0]), 0.1)
    out = a / b
    assert out.error[0] == np.inf and np.isfinite(out.error[1])
    assert (Measured(2.0, 0.0) / Measured(4.0, 0.0)).error == 0
