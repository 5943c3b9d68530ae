"""Tokens and displays of LaTeX math (refvi.checker.latex.tokens)."""

import re

import pytest

from refvi.checker.latex.tokens import displays, tokenize


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


def test_displays_skip_inline_code():
    """Prose that tells how to write a display (`` `$$ ... $$` ``) holds no
    display; math after it on the same line keeps its place."""
    text = "Write `$$ ... $$` or ``\\[ ... \\]``:\n\n`$$` $$ a = b $$\n"
    (d,) = displays(text)
    assert d.line == 3 and [t.text for t in d.rows[0]] == ["a", "=", "b"]


@pytest.mark.parametrize(
    "text, line, match",
    [
        ("x\n$$ \\frac{a}{b $$", 2, "unbalanced brackets: '{' is never closed"),
        ("$$ a = b) $$", 1, r"unbalanced brackets: '\)' closes nothing"),
        ("\n\n$$ \\left[ a \\right) $$", 3, r"'\[' \(line 6\) is closed by '\)'"),
        ("$$\n\\begin{matrix} a \\end{matrix}\n$$", 2, "unknown environment 'matrix'"),
        ("$$\n\\begin{aligned} a = b\n$$", 1, "is never ended"),
        ("a\n$$   $$", 2, "empty equation"),
        ("$$ a = b $$\n$$ c", 2, "never closed"),
    ],
)
def test_malformed_latex_names_the_line(text, line, match):
    """A display that cannot be read carries its error and line; the
    displays around it are read as usual."""
    text = "$$ u = v $$\n\n" + text.replace("\n", "\n", -1)
    found = displays("\n" + text + "\n\n$$ s = t $$\n")
    bad = [d for d in found if d.error is not None]
    assert len(bad) == 1 and bad[0].error_line == line + 3 and bad[0].rows == ()
    assert re.search(match, bad[0].error)
    assert [d.rows[0][0].text for d in found if d.error is None][0] == "u"
    assert found[-1].error is None and found[-1].rows[0][0].text == "s"


def rows(d):
    return [[t.text for t in row if t.text != "&"] for row in d.rows]


@pytest.mark.parametrize(
    "text",
    [
        "$$ a = b $$",
        "\\[ a = b \\]",
        "\\[\na = b\n\\]",
        "\\begin{equation}\na = b\n\\end{equation}",
        "\\begin{equation*} a = b \\end{equation*}",
        "$$\\begin{equation} a = b \\label{eq:ab} \\end{equation}$$",
        "$$\n\\begin{align*}\na &= b \\nonumber\n\\end{align*}\n$$",
        "\\begin{align\\*}\na &= b\n\\end{align\\*}",
        "\\begin{gather}\na = b \\notag\n\\end{gather}",
        "\\begin{multline}\na = b\n\\end{multline}",
        "\\begin{eqnarray}\na &=& b\n\\end{eqnarray}",
        "$$ \\begin{array}{rl} a &= b \\end{array} $$",
        "$$\n% a comment\na = b % why\n$$",
        "$$ a \\_ = b $$".replace("\\_ ", ""),
    ],
)
def test_every_display_form_reads_the_same(text):
    (d,) = displays("Some text.\n\n" + text + "\n\nMore text.\n")
    assert d.error is None, d.error
    assert rows(d) == [["a", "=", "b"]]
    assert d.line == 3


def test_rows_of_an_align_environment_and_row_spacing():
    text = "\\begin{align}\na &= b \\\\[4pt]\n&= c \\tag{2.1}\n\\end{align}\n"
    (d,) = displays(text)
    assert rows(d) == [["a", "=", "b"], ["=", "c"]]
    assert d.tags == ("2.1",) and d.end == 4


def test_markdown_escapes_inside_math_are_undone():
    (d,) = displays("$$ \\begin{aligned} q\\_\\phi &= p^\\* \\end{aligned} $$")
    assert rows(d) == [["q", "_", "\\phi", "=", "p", "^", "*"]]


def test_a_cases_environment_is_one_command():
    (d,) = displays(
        "$$ f(z) = \\begin{cases} 1 & z > 0 \\\\ 0 & \\text{else} \\end{cases} $$"
    )
    assert rows(d) == [["f", "(", "z", ")", "=", "\\cases"]]


def test_an_unclosed_display_ends_with_its_paragraph():
    text = "$$ a = b\n\nText.\n\n$$ c = d $$\n"
    first, second = displays(text)
    assert first.error == "'$$' is never closed" and first.line == 1
    assert second.error is None and second.line == 5


def test_inline_math_and_escaped_brackets_are_not_displays():
    assert displays("Inline $a = b$ and a row break \\\\[2pt] in text.") == []
