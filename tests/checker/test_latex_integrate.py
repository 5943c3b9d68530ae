"""The LaTeX front end inside ``refvi verify``: its lines are the derivation
checker's ``results.LineResult`` (method ``latex``), judged by the one judge,
checked in the same file as the check blocks."""

import re
from pathlib import Path

from refvi.checker.latex import check_latex_file, check_latex_text

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

$$ \log \Gamma(x) = 0 $$

$$ a := b $$
"""


def test_results_per_relation_with_method_and_notes():
    result = check_latex_text(TEXT, "t.md", seeds=2, only_lines={4, 6, 13})
    assert [r.line for r in result.lines] == [4, 8, 9, 13]  # not 15: its block
    first, eq, le, unsupported = result.lines
    assert (first.method, first.relation, first.holds, first.unchecked) == (
        "latex",
        "=",
        False,
        None,
    )
    assert first.verdict == "fails" and first.hint
    assert first.tolerance == 1e-9 and first.margin < 0
    assert (eq.line, eq.holds, le.line, le.relation, le.holds) == (
        8,
        True,
        9,
        "<=",
        True,
    )
    assert any(n.startswith("ambiguous; reading") for n in eq.note)
    assert any(":8: ambiguous" in w for w in result.warnings)
    assert unsupported.unchecked.startswith("unsupported: unsupported token")


def test_a_malformed_display_is_an_error_for_that_display_only():
    text = "---\n---\n$$ \\frac{a $$\n\n$$ p(x) = \\int p(x, z) dz $$\n"
    result = check_latex_text(text, "t.md", seeds=2)
    (good,) = result.lines  # no verdict for line 3: an error of the file
    assert result.errors == [(3, "unbalanced brackets: '{' is never closed")]
    assert good.line == 5 and good.holds


# ---------------------------------------------------------------------------
# `refvi verify`: blocks and LaTeX in one file, --latex-only, --explain.

MIXED = r"""---
settings: linear_gaussian
---
$$ D_{KL}(q \| p(z|x)) = \log p(x) - F(q) $$

```check
kl
= log_px - elbo
```

$$ \log p(x) \ge \mathrm{ELBO} $$

$$ \log p(x) \le \mathrm{ELBO} $$
"""


def verdict_and_method(row):
    """The verdict and the front end of a row of the text report."""
    verdict = re.search(r"\s(holds|fails|undetermined)\s", row).group(1)
    return verdict, re.search(r"\[(\w+): [^]]*\]$", row).group(1)


def run_cli(capsys, *args):
    from refvi.cli import main

    status = main(["verify", *map(str, args)])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_refvi_verify_checks_lines_without_a_block_from_their_latex(tmp_path, capsys):
    path = tmp_path / "mixed.md"
    path.write_text(MIXED)
    status, out, _ = run_cli(capsys, path)
    assert status == 1  # line 13 fails
    rows = [r for r in out.splitlines() if r.startswith("  L")]
    assert [r.split()[0] for r in rows] == ["L4", "L11", "L13"]
    assert [verdict_and_method(r) for r in rows] == [
        ("holds", "block"),
        ("holds", "latex"),
        ("fails", "latex"),
    ]
    assert "fails on linear_gaussian (3/3 instances)" in out


def test_latex_only_ignores_the_check_blocks(tmp_path, capsys):
    path = tmp_path / "mixed.md"
    path.write_text(MIXED)
    _, out, _ = run_cli(capsys, "--latex-only", "--explain", path)
    rows = [r for r in out.splitlines() if r.startswith("  L")]
    assert rows[0].startswith("  L4")
    assert verdict_and_method(rows[0]) == ("holds", "latex")
    assert "KL(q || p(z|x))    : scalar of (x)" in out  # --explain: the typed form


def test_malformed_latex_through_refvi_verify_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.md"
    path.write_text("---\nsettings: linear_gaussian\n---\n\n$$ \\left( p(z) $$\n")
    status, _, err = run_cli(capsys, path)
    assert status == 2
    assert err.strip() == f"{path}:5: error: unbalanced brackets: '(' is never closed"


# ---------------------------------------------------------------------------
# The bundled derivations and the README's worked example.

ROOT = Path(__file__).resolve().parents[2]


def test_bundled_derivations_hold_from_their_latex_or_say_why(capsys):
    # what `refvi verify --latex-only` computes: every line from its LaTeX
    from refvi.cli import bundled_derivations

    listed = []
    for path in bundled_derivations():
        for r in check_latex_file(path).lines:
            where = f"{path.name}:{r.line}"
            assert r.status != "fails", f"{where} fails"
            if r.status == "unsupported":
                assert r.reason, where
                listed.append(f"{where}: {r.reason}")
    with capsys.disabled():
        print(f"\n{len(listed)} bundled lines not checkable from the LaTeX alone")


def test_readme_worked_example_gives_the_verdicts_it_states():
    text = (ROOT / "derivations" / "README.md").read_text()
    example = re.search(
        r"<!-- latex-example -->\n```markdown\n(.*?)```\n<!-- /latex-example -->",
        text,
        flags=re.S,
    ).group(1)
    result = check_latex_text(example, "example.md")
    assert [r.status for r in result.lines] == ["holds", "fails", "fails"]
    for failing in result.lines[1:]:
        assert f"line {failing.line} fails; its value equals {failing.hint}" in text
    assert [st for _, st, _ in result.lines[2].readings] == ["fails", "holds"]
    for label, _, _ in result.lines[2].readings:
        assert label in text


def test_bundled_derivations_from_their_latex_alone():
    from refvi.checker.derivation import verify_file
    from refvi.cli import bundled_derivations

    failing, reasons = set(), 0
    for path in bundled_derivations():
        for line in verify_file(path, seeds=2, latex_only=True).lines:
            assert line.method == "latex"
            if line.unchecked is not None:
                assert line.unchecked.strip(), (path.name, line.line)
                reasons += 1
            elif not line.holds:
                failing.add((path.name, line.line))
    assert not failing, failing
    assert reasons > 0
