"""Error bounds of measured values through the check language's functions
(refvi.checker.propagate), each family checked by another route: the value
against the plain function, the bound against central differences of the
function (first order: the bound is |f'(v)| e up to O(e^2)) and against the
worst change found by sampling the error box (the bound is never exceeded)."""

import itertools

import numpy as np
import pytest

from refvi.checker import evaluate
from refvi.checker.evaluate import Refused, compile_check
from refvi.checker.measured import Measured

RNG = np.random.default_rng(20261126)


def run(source, **names):
    tree, _ = compile_check(source)
    return evaluate.evaluate(tree, names)


def sampled_change(fn, *args, draws=4000):
    """The largest |fn(a') - fn(a)| over a' on the corners and random points
    of the error box of each Measured argument (exact arguments fixed)."""
    base = fn(*[a.value if isinstance(a, Measured) else a for a in args])
    worst = np.zeros(np.shape(base))
    measured = [a for a in args if isinstance(a, Measured)]
    signs = list(itertools.product((-1.0, 1.0), repeat=len(measured)))
    for j in range(draws):
        if j < len(signs):
            corner = zip(measured, signs[j], strict=True)
            unit = [np.full(m.value.shape, s) for m, s in corner]
        else:
            unit = [RNG.uniform(-1, 1, m.value.shape) for m in measured]
        it = iter(unit)
        moved = [
            a.value + next(it) * a.error if isinstance(a, Measured) else a for a in args
        ]
        worst = np.maximum(worst, np.abs(fn(*moved) - base))
    return worst


UNARY = {
    "exp": (np.exp, np.exp),
    "log": (np.log, lambda v: 1 / v),
    "sqrt": (np.sqrt, lambda v: 0.5 / np.sqrt(v)),
    "abs": (np.abs, np.sign),
    "log1p": (np.log1p, lambda v: 1 / (1 + v)),
    "expm1": (np.expm1, np.exp),
    "square": (np.square, lambda v: 2 * v),
    "tanh": (np.tanh, lambda v: 1 - np.tanh(v) ** 2),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_elementwise_bound_is_first_order_and_covers_the_box(name):
    fn, _ = UNARY[name]
    v = np.array([0.3, 1.7, 2.5])
    m = Measured(v, np.array([1e-6, 3e-7, 2e-6]))
    out = run(f"np.{name}(m)", m=m)
    assert isinstance(out, Measured)
    np.testing.assert_array_equal(out.value, fn(v))
    # first order: |f'(v)| e by central differences of f, to O(e^2)
    h = 1e-5
    slope = np.abs(fn(v + h) - fn(v - h)) / (2 * h)
    np.testing.assert_allclose(out.error, slope * m.error, rtol=1e-4)
    assert np.all(out.error >= sampled_change(fn, m) * (1 - 1e-12))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_elementwise_bound_holds_for_large_errors(name):
    fn, _ = UNARY[name]
    m = Measured(np.array([0.8, 2.0]), np.array([0.3, 0.5]))
    out = run(f"np.{name}(m)", m=m)
    assert np.all(out.error >= sampled_change(fn, m) * (1 - 1e-12))


@pytest.mark.parametrize("name", ["log", "sqrt", "log1p"])
def test_interval_leaving_the_domain_has_an_infinite_error(name):
    edge = -1.0 if name == "log1p" else 0.0
    m = Measured(np.array([edge + 0.1, edge + 5.0]), np.array([0.2, 0.1]))
    out = run(f"np.{name}(m)", m=m)
    assert out.error[0] == np.inf and np.isfinite(out.error[1])


@pytest.mark.parametrize("name", ["maximum", "minimum", "logaddexp"])
def test_lipschitz_functions(name):
    fn = getattr(np, name)
    a = Measured(np.array([0.5, -1.0, 2.0]), np.array([1e-3, 2e-3, 3e-3]))
    b = np.array([0.4, -0.5, 2.0])
    out = run(f"np.{name}(a, b)", a=a, b=b)
    np.testing.assert_array_equal(out.value, fn(a.value, b))
    assert np.all(out.error >= sampled_change(fn, a, b) * (1 - 1e-12))
    c = Measured(b, 5e-4)
    both = run(f"np.{name}(a, c)", a=a, c=c)
    assert np.all(both.error >= sampled_change(fn, a, c) * (1 - 1e-12))


LINEAR = {
    "np.sum(m)": lambda v: np.sum(v),
    "np.sum(m, axis=1)": lambda v: np.sum(v, axis=1),
    "np.mean(m, 0)": lambda v: np.mean(v, 0),
    "np.trace(m)": np.trace,
    "np.diagonal(m)": np.diagonal,
    "np.tril(m)": np.tril,
    "np.triu(m, 1)": lambda v: np.triu(v, 1),
    "np.diag(m[0])": lambda v: np.diag(v[0]),
    "np.concatenate([m, x])": lambda v: np.concatenate([v, np.ones((2, 2))]),
    "np.stack([m[0], x[1]], axis=1)": lambda v: np.stack([v[0], np.ones(2)], axis=1),
    "np.broadcast_to(m[0], (3, 2))": lambda v: np.broadcast_to(v[0], (3, 2)),
    "np.swapaxes(m, 0, 1)": lambda v: np.swapaxes(v, 0, 1),
    "np.transpose(m)": np.transpose,
    "m.T": lambda v: v.T,
    "m.sum(axis=0)": lambda v: v.sum(axis=0),
    "m.mean()": lambda v: v.mean(),
    "m.ravel()": np.ravel,
    "m.reshape(4)": lambda v: v.reshape(4),
    "m[:, None]": lambda v: v[:, None],
    "sum([m[0], m[1]])": lambda v: v[0] + v[1],
    "np.max(m, axis=1)": lambda v: np.max(v, axis=1),
    "m.min()": lambda v: v.min(),
    "np.std(m, 1)": lambda v: np.std(v, 1),
    "m.std(ddof=1)": lambda v: v.std(ddof=1),
}


@pytest.mark.parametrize("source", sorted(LINEAR))
def test_linear_and_reducing_functions(source):
    fn = LINEAR[source]
    error = np.array([[1e-3, 2e-3], [0, 4e-3]])
    m = Measured(np.array([[1.0, -2.0], [0.5, 3.0]]), error)
    out = run(source, m=m, x=np.ones((2, 2)))
    assert isinstance(out, Measured)
    np.testing.assert_allclose(out.value, fn(m.value), rtol=0, atol=0)
    assert np.all(out.error >= sampled_change(fn, m) * (1 - 1e-12))
    # not a blanket bound: tight within a factor of 2 of the worst change
    # found for these operations with errors in every entry
    assert np.all(out.error <= 2 * sampled_change(fn, m) + 1e-15)


MULTILINEAR = {
    "np.einsum('ij,jk->ik', m, a)": (lambda p, q: np.einsum("ij,jk->ik", p, q), "ma"),
    "np.einsum('ij,ij->i', m, n)": (lambda p, q: np.einsum("ij,ij->i", p, q), "mn"),
    "np.outer(m[0], a[0])": (lambda p, q: np.outer(p[0], q[0]), "ma"),
    "m @ a": (lambda p, q: p @ q, "ma"),
    "a @ n": (lambda p, q: p @ q, "an"),
    "m @ n": (lambda p, q: p @ q, "mn"),
}


@pytest.mark.parametrize("source", sorted(MULTILINEAR))
def test_multilinear_functions(source):
    fn, order = MULTILINEAR[source]
    names = {
        "m": Measured(np.array([[1.0, -2.0], [0.5, 3.0]]), 1e-3),
        "n": Measured(np.array([[0.2, 1.0], [-1.5, 0.7]]), 2e-3),
        "a": np.array([[0.3, -0.4], [1.2, 0.9]]),
    }
    out = run(source, **names)
    args = [names[c] for c in order]
    np.testing.assert_allclose(out.value, fn(*[getattr(x, "value", x) for x in args]))
    assert np.all(out.error >= sampled_change(fn, *args) * (1 - 1e-12))
    assert np.all(out.error <= 2 * sampled_change(fn, *args))


def test_arithmetic_division_and_powers():
    m = Measured(np.array([2.0, 3.0]), np.array([1e-3, 1e-2]))
    m2 = Measured(np.array([0.5, -4.0]), 1e-3)
    for source, fn, args in [
        ("m / m2", lambda p, q: p / q, (m, m2)),
        ("1 / m", lambda p: 1 / p, (m,)),
        ("m ** 2", lambda p: p**2, (m,)),
        ("m ** -0.5", lambda p: p**-0.5, (m,)),
        ("2 ** m", lambda p: 2**p, (m,)),
        ("abs(m2)", np.abs, (m2,)),
    ]:
        names = {"m": m, "m2": m2}
        out = run(source, **names)
        np.testing.assert_allclose(out.value, fn(*[a.value for a in args]))
        assert np.all(out.error >= sampled_change(fn, *args) * (1 - 1e-12)), source


def test_a_pole_or_a_negative_base_in_the_box_has_an_infinite_error():
    m = Measured(np.array([0.05, 3.0]), np.array([0.1, 0.1]))
    assert run("1 / m", m=m).error[0] == np.inf
    assert run("m ** -1", m=m).error[0] == np.inf
    assert run("m ** 0.5", m=m).error[0] == np.inf
    assert np.isfinite(run("m ** 2", m=m).error).all()


def test_exact_results_of_shapes_only():
    m = Measured(np.array([1.0, 2.0]), 1e-3)
    out = run("np.zeros_like(m) + 1", m=m)
    assert isinstance(out, np.ndarray) and np.all(out == 1)
    assert run("m.shape", m=m) == (2,)


@pytest.mark.parametrize(
    "source",
    [
        "np.linalg.solve(A, m)",
        "np.linalg.det(np.diag(m))",
        "float(m[0])",
        "m.item(0)",
        "np.sum(x, axis=m)",
        "np.arange(m)",
    ],
)
def test_functions_that_cannot_carry_the_error_refuse_it(source):
    """Outside the check language (``Refused``: reported as unsupported)."""
    m = Measured(np.array([1.0, 2.0]), 1e-3)
    with pytest.raises(Refused, match="measured value|error estimate"):
        run(source, m=m, A=np.eye(2), x=np.ones((2, 2)))


def test_nan_error_is_taken_as_infinite():
    assert Measured(1.0, np.nan).error == np.inf
