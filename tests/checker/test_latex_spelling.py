"""Every common spelling of the same line reads the same
(refvi.checker.latex.spelling, and the parser's vocabulary)."""

import pytest

from refvi.checker.latex import ir
from refvi.checker.latex.parser import parse_equation, split_equations
from refvi.checker.latex.tokens import displays


def read(latex):
    """The typed form of each equation of the display ``$$ latex $$``."""
    (d,) = displays(f"$$ {latex} $$")
    assert d.error is None, d.error
    out = []
    for seq in split_equations(d):
        eq = parse_equation(seq)
        out.append(" ; ".join(ir.describe(e) for e in eq.exprs))
    return out


KL = r"D_{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L}"


@pytest.mark.parametrize(
    "variant",
    [
        r"D_{KL}(q(z|x) || p(z|x)) = \log p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \Vert p(z|x)) = \log p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \vert\vert p(z|x)) = \log p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \parallel p(z|x)) = \log p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \,\|\, p(z|x)) = \log p(x) - \mathcal{L}",
        r"KL(q(z|x), p(z|x)) = \log p(x) - \mathcal{L}",
        r"KL[q(z|x) \| p(z|x)] = \log p(x) - \mathcal{L}",
        r"\mathrm{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L}",
        r"\operatorname{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L}",
        r"\mathbb{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L}",
        r"D_{\mathrm{KL}}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L}",
        r"\text{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \| p(z|x)) = log p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \| p(z|x)) = \ln p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \| p(z|x)) = ln p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \| p(z|x)) = \text{log} p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \| p(z|x)) = \operatorname{log} p(x) - \mathcal{L}",
        r"D_{KL}(q(\mathbf{z}|\mathbf{x}) \| p(\boldsymbol{z}|\bm{x})) = \log p(x) "
        r"- \mathcal{L}",
        r"D_{KL}(q(z \mid x) \| p(z \mid x)) = \log p(x) - \mathcal{L}"
        r" \quad \text{(by Bayes' rule)}",
        r"D_{KL}(q(z|x) \| p(z|x;\theta)) = \log p(x|\theta) - \mathcal{L}",
        r"D_{KL}(q(z|x) \| p(z|x,\theta)) = \log p(x; \theta) - \mathcal{L}",
        r"D_{KL}(q(z|x^{(i)}) \| p(z|x_i)) = \log p(x^{(i)}) - \mathcal{L}",
        r"D_{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L} \qquad (2.14)",
        r"D_{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L} \quad (k \times 1)",
        r"D_{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L}"
        r" \qquad \left(\text{by Bayes' rule}\right) \tag{2.14}",
        r"D_{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L} \tag{2.14}",
        r"D_{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L} \label{eq:kl}",
        r"D_{KL}(q(z|x) \| p(z|x)) \overset{\text{Bayes}}{=} \log p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \| p(z|x)) = \underbrace{\log p(x)}_{\text{evidence}}"
        r" - \mathcal{L}",
        r"D_{KL}(q(z|x) \| p(z|x)) = \overbrace{\log p(x)}^{\text{evidence}}"
        r" - \mathcal{L}",
        r"\therefore D_{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L}",
        r"D_{KL}(q(z|x) \| p(z|x)) = \log p(x) - \mathcal{L}"
        r" \because \text{Bayes' rule}",
    ],
)
def test_kl_identity_spellings_read_the_same(variant):
    assert read(variant) == read(KL)


@pytest.mark.parametrize(
    "variant, canonical",
    [
        (r"{1 \over 2} \log p(x)", r"\frac{1}{2} \log p(x)"),
        (r"\dfrac{1}{2} \log p(x)", r"\frac{1}{2} \log p(x)"),
        (r"\tfrac12 \log p(x)", r"\frac{1}{2} \log p(x)"),
        (r"\mathbb{E}_{q} \log p(x|z) - D_{KL}(q \| p(z))",
         r"\mathbb{E}_{q}[\log p(x|z)] - D_{KL}(q \| p(z))"),
        (r"\langle \log p(x, z) \rangle_{q(z|x)}",
         r"\mathbb{E}_{z \sim q(z|x)}[\log p(x, z)]"),
        (r"\exp\{\log p(x, z)\}", r"\exp(\log p(x, z))"),
        (r"H(q, p(z))", r"\mathbb{E}_{q}[-\log p(z)]"),
        (r"q_\phi(z|x^{(i)})", r"q_\phi(z|x)"),
        (r"I_q(x; z)", r"\mathbb{E}_{p_{data}(x)}[D_{KL}(q(z|x) \| q_{agg}(z))]"),
        (r"I(z, x)", r"\mathbb{E}_{p_{data}(x)}[D_{KL}(q(z|x) \| q_{agg}(z))]"),
    ],
)  # fmt: skip
def test_vocabulary_spellings(variant, canonical):
    assert read(variant) == read(canonical)


def test_connectives_and_remarks_separate_or_vanish():
    got = read(
        r"p(x) = \int p(x,z) dz \implies \log p(x) = \log \int p(x,z) dz"
        r" \quad \text{for all } x"
    )
    assert got == [
        "p(x) ; Integral dz [p(x,z)]",
        "log[p(x)] ; log[Integral dz [p(x,z)]]",
    ]
    (d,) = displays(r"$$ \log p(x) \ge \mathcal{L} \quad (\text{Jensen}) $$")
    assert d.notes == ("Jensen",)


def test_a_trailing_group_after_quad_is_a_remark_or_a_condition():
    (d,) = displays(
        "$$ \\begin{aligned} a &= b (c) \\quad (d \\times k) \\\\\n"
        "&= e \\qquad (\\text{by Jensen}) \\\\\n"
        "f &= g \\quad (x > 0) \\\\\n"
        "h &= i \\quad (\\text{if } j = k) \\\\\n"
        "l &= m \\quad (n) + o \\end{aligned} $$"
    )
    rows = [" ".join(t.text for t in row) for row in d.rows]
    assert rows == [
        "a & = b ( c )",
        "& = e",
        "f & = g \\condition",
        "h & = i \\condition",
        "l & = m ( n ) + o",  # not the row's end: a factor
    ]
    assert d.notes == ("d \\times k", "by Jensen", "x > 0", "if j = k")
    assert {t.line for t in d.rows[2]} == {3}  # file lines kept
    (seq,) = split_equations(displays(r"$$ \log p(x) = 0 \quad (x > 0) $$")[0])
    with pytest.raises(ir.Unsupported, match="under a condition"):
        parse_equation(seq)


@pytest.mark.parametrize(
    "latex, message",
    [
        (r"p(z) = \begin{cases} 1 & z > 0 \\ 0 & \text{else} \end{cases}",
         "piecewise"),
        (r"\mathbb{E}[\log p(x|z)]", "needs its measure as subscript"),
        (r"p(x|z, \theta^{(t-1)})", r"parameters are read at .*theta\^{old}"),
    ],
)  # fmt: skip
def test_unsupported_constructs_name_the_supported_spelling(latex, message):
    (d,) = displays(f"$$ {latex} $$")
    (seq,) = split_equations(d)
    with pytest.raises(ir.Unsupported, match=message):
        parse_equation(seq)
