"""Units of the data-statistics vocabulary of the LaTeX checker: accented
symbols as one token, prose lists of definitions, and which chains are read
as estimates (the corpus files data_statistics.md, mixture_statistics.md and
entries_and_maximum.md check the verdicts)."""

import pytest

from refvi.checker.latex import ir
from refvi.checker.latex.estimates import read_estimates
from refvi.checker.latex.parser import nodes
from refvi.checker.latex.prose import prose_definitions
from refvi.checker.latex.tokens import tokenize


@pytest.mark.parametrize(
    "src, text",
    [
        (r"\bar x", r"\bar{x}"),
        (r"\bar{x}", r"\bar{x}"),
        (r"\overline{x}", r"\bar{x}"),
        (r"\hat\Sigma", r"\hat{\Sigma}"),
        (r"\widehat{\Sigma}", r"\hat{\Sigma}"),
        (r"\bar m", r"\bar{m}"),
    ],
)
def test_an_accent_on_one_symbol_is_one_token(src, text):
    assert [(t.kind, t.text) for t in tokenize(src)] == [("cmd", text)]


def test_an_accent_on_q_or_on_a_group_is_left_alone():
    assert [t.text for t in tokenize(r"\hat q")] == [r"\hat", "q"]
    assert [t.text for t in tokenize(r"\hat{x + y}")][:2] == [r"\hat", "{"]


def _sources(text):
    return [m.source for m in prose_definitions(text)]


def test_a_list_after_a_defining_word_defines_each_item():
    text = (
        "The data enter only through $N_k = \\sum_i r_{ik}$, $s_k = \\sum_i "
        "r_{ik} x_i$ and $S_k = \\sum_i r_{ik} x_i x_i^\\top$; so $T = W$.\n"
    )
    assert _sources(text) == [
        "N_k = \\sum_i r_{ik}",
        "s_k = \\sum_i r_{ik} x_i",
        "S_k = \\sum_i r_{ik} x_i x_i^\\top",
    ]


def test_a_list_ends_at_any_other_word():
    text = "With $a = 1$, $b = 2$ and hence $c = 3$, then $d = 4$.\n"
    assert _sources(text) == ["a = 1", "b = 2"]


def test_a_list_without_a_defining_word_defines_nothing():
    assert _sources("So $a = 1$, $b = 2$ and $c = 3$.\n") == []


def _chain(*exprs):
    return read_estimates(list(exprs), nodes)


def test_a_parameter_equated_to_a_data_statistic_is_an_estimate():
    mu, xbar, W = ir.Sym("\\mu"), ir.Sym("\\bar{x}"), ir.Sym("W")
    left, right = _chain(mu, ir.Add((xbar, W), (1, -1)))
    assert isinstance(left, ir.At) and left.at == "old"
    assert left.body == ir.At(mu, "new", left.reason)
    moved = [n for n in nodes(right) if isinstance(n, ir.At) and n.at == "new"]
    assert [n.body for n in moved] == [W]


def test_other_chains_are_not_estimates():
    mu, W, S = ir.Sym("\\mu"), ir.Sym("W"), ir.Sym("S")
    assert _chain(mu, W) == [mu, W]  # no data on the right
    product = ir.Mul((W, S))
    xbar = ir.Sym("\\bar{x}")
    assert _chain(product, xbar) == [product, xbar]  # not a parameter alone


def test_a_components_estimate_is_unsupported():
    total = ir.DataSum(ir.Var("x"), "i")
    with pytest.raises(ir.Unsupported, match="version"):
        _chain(ir.LabelParam("Sigma"), total)
