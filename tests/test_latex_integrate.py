"""The LaTeX checker's results in the derivation checker's result type
(refvi.verify.latex.integrate)."""

from types import SimpleNamespace

import pytest

from refvi.verify.latex import MalformedLatex
from refvi.verify.latex.integrate import latex_line_results

TEXT = r"""---
settings: linear_gaussian
---
$$ \mathrm{ELBO} = \log p(x) + D_{KL}(q \| p(z|x)) $$

$$
\begin{aligned}
\mathrm{ELBO} &= \mathbb{E}_{q}[\log p(x|z) p(z)] - \mathbb{E}_{q}[\log q] \\
&\le \log p(x)
\end{aligned}
$$

$$ p(z) = \mathcal{N}(z; 0, 1) $$

$$ a := b $$
"""


def test_results_per_relation_with_method_and_notes():
    by_display, warnings = latex_line_results(
        TEXT, "t.md", [4, 6, 13], 2, SimpleNamespace
    )
    assert sorted(by_display) == [4, 6, 13]
    (first,) = by_display[4]
    assert (first.method, first.relation, first.holds, first.unchecked) == (
        "latex",
        "=",
        False,
        None,
    )
    assert any("its value equals" in n for n in first.note)
    eq, le = by_display[6]
    assert (eq.line, eq.holds, le.line, le.relation, le.holds) == (
        8,
        True,
        9,
        "<=",
        True,
    )
    assert any(n.startswith("ambiguous; reading") for n in eq.note)
    assert any(":8: ambiguous" in w for w in warnings)
    (unsupported,) = by_display[13]
    assert unsupported.unchecked.startswith("unsupported: unsupported token")
    assert 15 not in by_display  # not handed over: checked by its block


def test_malformed_display_raises_with_its_line():
    with pytest.raises(MalformedLatex) as info:
        latex_line_results(
            "---\n---\n$$ \\frac{a $$\n", "t.md", [3], 2, SimpleNamespace
        )
    assert info.value.line == 3
