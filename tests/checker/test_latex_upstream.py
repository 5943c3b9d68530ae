"""Upstream weights, the quantity a derivative without an argument
differentiates, and the denominators of derivatives
(refvi.checker.latex.upstream, parser)."""

import numpy as np
import pytest

from refvi.checker.latex import ir, upstream
from refvi.checker.latex.models import make_model
from refvi.checker.latex.parser import _entry_subscript, _joint_denominator
from refvi.checker.latex.tokens import displays

TEXT = """A first paragraph.

For a batch, $f = \\sum_i g_i \\ell_i$ with scalar
upstream gradients $g_i$ (`dout`).

For $f = \\sum_i h_i^\\top x_i$ with an upstream gradient $h_i$ (`dout`, shape
$(n, d)$), and with weights $w_n$; but `upstream weights $c_i$` is code.
"""


def test_declarations_name_the_weight_its_paragraph_and_its_shape():
    found = upstream.declarations(TEXT, first_line=10)
    shown = [(d.name, d.index, d.line, d.at, d.vector) for d in found]
    assert shown == [
        ("g", "i", 12, 13, False),  # in scope from its paragraph's start
        ("h", "i", 15, 15, True),  # shape (n, d): more than one entry
        ("w", "n", 15, 16, False),
    ]


def test_weights_are_the_same_on_a_moved_instance_and_differ_by_name():
    model = make_model("gaussian", 0)
    g = upstream.weights(model, "g")
    assert g.shape == (model.x_data().shape[0],)
    moved = model.moved("\\mu", model.names["mu_p"] + 0.1)
    assert np.array_equal(upstream.weights(moved, "g"), g)
    assert not np.allclose(upstream.weights(model, "h"), g)
    assert not np.allclose(upstream.weights(make_model("gaussian", 1), "g"), g)


def _seq(latex):
    (d,) = displays(f"$$ {latex} $$")
    return [t for row in d.rows for t in row]


@pytest.mark.parametrize(
    ("latex", "names"),
    [
        (r"\frac{\partial f}{\partial \mu} = 0", True),
        (r"\frac{\partial}{\partial \mu} \log p(x) = 0", True),
        (r"\frac{\partial}{\partial \mu} = \sum_i g_i b_i", False),
        (r"\frac{\partial}{\partial \mu_{k}}, \quad x = 1", False),
        (r"x = 1", False),
    ],
)
def test_a_chain_names_a_quantity_when_its_derivative_has_an_argument(latex, names):
    assert upstream.names_quantity(_seq(latex)) is names


def test_a_derivative_without_an_argument_needs_a_weight_declared_after_its_quantity():
    ref, defined, q = upstream.Referent(), {}, ir.Sym("C")
    ref.record(defined)
    assert upstream.REFERENT not in defined
    (decl,) = upstream.declarations("with upstream weights $g_i$")
    ref.declared(decl)  # before any quantity: no effect
    ref.named(q, 3)
    ref.record(defined)
    assert "no upstream weight is declared" in defined[upstream.REFERENT].error
    ref.declared(decl)
    ref.record(defined)
    body = defined[upstream.REFERENT].body
    assert isinstance(body, ir.DataSum)
    assert body.body.factors[1] == q
    ref.named(None, 5)  # a quantity that cannot be read
    ref.record(defined)
    assert "cannot be read" in defined[upstream.REFERENT].error


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["\\psi", "_", "j"], (("\\psi",), "j")),
        (["\\mu", "_", "{", "p", ",", "j", "}"], (("\\mu", "_", "p"), "j")),
        (["x", "_", "{", "i", "j", "}"], (("x", "_", "i"), "j")),
        (["L", "_", "q"], None),
        (["L", "_", "{", "j", "j", "}"], None),
    ],
)
def test_the_entry_of_an_elementwise_derivative(texts, expected):
    assert _entry_subscript(texts) == expected


@pytest.mark.parametrize(
    ("latex", "joint"),
    [
        (r"\log p(x_i, z=k)", True),
        (r"\log p(x_{i}, z = k)", True),
        (r"\log p(x, z=k)", True),
        (r"\log p(x_i \mid z=k)", False),
        (r"\log p(z=k)", False),
    ],
)
def test_the_log_joint_as_a_denominator(latex, joint):
    assert _joint_denominator([t.text for t in _seq(latex)], "z") is joint
