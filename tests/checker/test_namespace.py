"""Quadrature operators of the settings (refvi.checker.namespace): values with
error estimates, refined to the target of the line being evaluated, checked
against closed forms."""

import numpy as np
import pytest

from refvi.checker.measured import DEFAULT_TARGET, Measured, refinement_target
from refvi.checker.namespace import MAX_ORDER, GaussianRule
from refvi.checker.settings import SETTINGS


def one_dimensional_rule(order=20):
    """N(0.3, 0.7^2) for two data points."""
    mean = np.array([[0.3], [0.3]])
    L = np.full((2, 1, 1), 0.7)
    return GaussianRule(mean, L, order)


def test_measure_of_a_polynomial_is_exact_with_a_rounding_sized_error():
    rule = one_dimensional_rule()
    out = rule.measure(lambda z: z[..., 0] ** 2)
    assert isinstance(out, Measured)
    np.testing.assert_allclose(out.value, 0.3**2 + 0.7**2, rtol=1e-14)
    assert np.all(out.error <= 1e-14)


def test_measure_refines_until_the_error_is_below_the_target_then_stops():
    """cos(4z) needs many nodes: E cos(4 z) = cos(1.2) exp(-8 * 0.49)."""
    rule = one_dimensional_rule(order=6)
    exact = np.cos(1.2) * np.exp(-8 * 0.49)
    with refinement_target(1e-4):
        loose = rule.measure(lambda z: np.cos(4 * z[..., 0]))
    with refinement_target(1e-12):
        tight = rule.measure(lambda z: np.cos(4 * z[..., 0]))
    assert np.all(loose.error <= 1e-4) and np.all(tight.error <= 1e-12)
    assert np.all(loose.error > 1e-12)  # the loose target stopped earlier
    for out in (loose, tight):  # the estimate covers the true error
        assert np.all(np.abs(out.value - exact) <= out.error + 1e-15)


def test_target_defaults_to_a_tenth_of_the_default_tolerance():
    rule = one_dimensional_rule(order=6)
    out = rule.measure(lambda z: np.cos(4 * z[..., 0]))
    assert np.all(out.error <= DEFAULT_TARGET) and DEFAULT_TARGET == 1e-10


def test_budget_spent_without_meeting_the_target_gives_an_infinite_error():
    """|z - m| has a kink at the mean: Gauss-Hermite converges slowly and its
    error alternates in sign with the parity of the order, so the last
    difference (1e-4 here) would miss the error: the entry is unbounded."""
    rule = one_dimensional_rule(order=20)
    out = rule.measure(lambda z: np.abs(z[..., 0] - 0.3))
    assert np.all(out.error == np.inf) and MAX_ORDER == 2000
    assert np.all(np.abs(out.value - np.sqrt(2 / np.pi) * 0.7) < 1e-3)


def test_integral_of_a_density_is_one_and_far_nodes_do_not_overflow():
    """integral(f) divides by the reference density in logs: at orders where
    1 / N(z) overflows for the outer nodes the value stays finite."""
    names = SETTINGS["mixture_prior"](0).names
    with refinement_target(1e-13):
        out = names["integral"](np.exp(names["log_q"]))
    np.testing.assert_allclose(out.value, 1.0, rtol=0, atol=1e-13)
    rule = one_dimensional_rule(order=20)
    far = rule.expect(lambda z: np.exp(-0.5 * (z[..., 0] - 0.3) ** 2 / 0.49),
                      order=1000, integral=True)  # fmt: skip
    np.testing.assert_allclose(far, np.sqrt(2 * np.pi * 0.49), rtol=1e-13)


@pytest.mark.parametrize(
    ("setting", "options", "operator"),
    [
        ("linear_gaussian", {}, "E_q"),
        ("linear_gaussian", {}, "E_post"),
        ("linear_gaussian", {}, "E_prior"),
        ("mixture_prior", {}, "E_q"),
        ("mixture_prior", {}, "E_post"),
        ("gaussian", {}, "E_p"),
        ("em_linear_gaussian", {}, "E_post"),
    ],
)
def test_continuous_operators_return_measured_values(setting, options, operator):
    names = SETTINGS[setting](0, **options).names
    out = names[operator](lambda z: np.sum(z**2, axis=-1))
    assert isinstance(out, Measured) and np.all(out.error <= 1e-10)


def test_discrete_operators_stay_exact_sums():
    names = SETTINGS["mixture"](0).names
    out = names["E_q"](names["log_q"])
    assert isinstance(out, np.ndarray)
