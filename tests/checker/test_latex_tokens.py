"""Tokens and displays of LaTeX math (refvi.checker.latex.tokens)."""

import pytest

from refvi.checker.latex.tokens import MalformedLatex, displays, tokenize


def texts(src):
    return [t.text for t in tokenize(src)]


def test_synonyms_and_spacing_are_normalised():
    got = texts(r"p(z \mid x) \, \leq \left( a \right) \quad \coloneqq \dfrac{1}{2}")
    assert got == ["p", "(", "z", "|", "x", ")", "\\le", "(", "a", ")", ":=",
                   "\\frac", "{", "1", "}", "{", "2", "}"]  # fmt: skip


def test_font_commands_become_names_or_letters():
    got = tokenize(r"\mathbb{E} \mathrm{KL} \mathcal{L} \mathrm{d} z \|")
    assert [(t.kind, t.text) for t in got] == [
        ("name", "mathbb:E"),
        ("name", "KL"),
        ("name", "mathcal:L"),
        ("letter", "d"),
        ("letter", "z"),
        ("char", "||"),
    ]
    assert str(got[2]) == r"\mathcal{L}"


def test_tokens_carry_their_file_line():
    toks = tokenize("a =\n b\n + c", line=10)
    assert [(t.text, t.line) for t in toks] == [
        ("a", 10), ("=", 10), ("b", 11), ("+", 12), ("c", 12)
    ]  # fmt: skip


def test_displays_split_aligned_rows_and_record_tags():
    text = "intro\n\n$$\n\\begin{aligned}\na &= b \\\\\n&= c\n"
    text += "\\end{aligned}\n\\tag{E.1}\n$$\n"
    (d,) = displays(text)
    assert d.line == 3
    assert [[t.text for t in row] for row in d.rows] == [
        ["a", "&", "=", "b"],
        ["&", "=", "c"],
    ]
    assert d.rows[1][1].line == 6
    assert d.tags == ("E.1",)


def test_displays_skip_code_fences():
    text = "```\n$$ not math\n```\n$$ a = b $$\n"
    (d,) = displays(text)
    assert d.line == 4


@pytest.mark.parametrize(
    "text, line, match",
    [
        ("x\n$$ \\frac{a}{b $$", 2, "unbalanced brackets: '{' is never closed"),
        ("$$ a = b) $$", 1, r"unbalanced brackets: '\)' closes nothing"),
        ("\n\n$$ \\left[ a \\right) $$", 3, r"'\[' \(line 3\) is closed by '\)'"),
        ("$$\n\\begin{matrix} a \\end{matrix}\n$$", 2, "unknown environment 'matrix'"),
        ("$$\n\\begin{aligned} a = b\n$$", 1, "is never ended"),
        ("a\n$$   $$", 2, "empty equation"),
        ("$$ a = b $$\n$$ c", 2, "never closed"),
    ],
)
def test_malformed_latex_names_the_line(text, line, match):
    with pytest.raises(MalformedLatex, match=match) as info:
        displays(text)
    assert info.value.line == line
