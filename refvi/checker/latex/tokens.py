"""Tokens of LaTeX display math, and the display equations of a Markdown file.

``displays(text)`` finds every ``$$ ... $$`` block, splits ``aligned``/``align``
environments into rows (``\\``) and cells (``&``), and returns one
:class:`Display` per block with the rows as token lists. ``tokenize`` turns a
string of math into :class:`Token` objects, each carrying its file line so
every message can say ``file:line``. Spacing and sizing commands are dropped;
synonyms are normalised (``\\mid`` -> ``|``, ``\\leq`` -> ``\\le``,
``\\coloneqq`` -> ``:=``); a font command around a word (``\\mathrm{KL}``,
``\\mathbb{E}``) becomes one ``name`` token.

Malformed input (unbalanced braces or delimiters, an unknown environment, an
empty equation, an unterminated ``$$``) raises :class:`MalformedLatex`.
"""

import re
from dataclasses import dataclass

from refvi.checker.latex import spelling
from refvi.checker.latex.accents import merge_accents
from refvi.checker.limits import MAX_LATEX_NESTING, MAX_LATEX_TOKENS


class MalformedLatex(ValueError):
    """LaTeX that cannot be read at all; ``line`` is the 1-based file line."""

    def __init__(self, message, line):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is 'num', 'letter', 'name', 'cmd' or 'char'."""

    kind: str
    text: str
    line: int

    def __str__(self):
        """The token as LaTeX (a font name ``mathcal:N`` reads ``\\mathcal{N}``)."""
        font, sep, word = self.text.partition(":")
        if self.kind == "name" and sep:
            return f"\\{font}{{{word}}}"
        return self.text


@dataclass(frozen=True)
class Display:
    """A ``$$ ... $$`` block: its first file line, its source, its rows."""

    line: int
    source: str
    rows: tuple  # of tuples of Token; cells are separated by a '&' char token
    tags: tuple  # the \tag{...} labels, in order
    error: str | None = None  # why the display cannot be read (rows empty)
    end: int = 0  # its last file line
    error_line: int = 0  # the file line the error points at
    notes: tuple = ()  # remarks written in the display (\\text{...}), dropped


# Commands that only change spacing or size: dropped.
_IGNORED = {
    "\\,", "\\;", "\\:", "\\!", "\\ ", "\\quad", "\\qquad", "\\enspace",
    "\\thinspace", "\\displaystyle", "\\textstyle", "\\limits", "\\nolimits",
    "\\left", "\\right", "\\big", "\\Big", "\\bigg", "\\Bigg", "\\bigl",
    "\\bigr", "\\Bigl", "\\Bigr", "\\biggl", "\\biggr", "\\Biggl", "\\Biggr",
    "\\middle",
}  # fmt: skip

# Synonyms, mapped to one canonical token text.
_SYNONYMS = {
    "\\mid": "|", "\\vert": "|", "\\lvert": "|", "\\rvert": "|",
    "\\|": "||", "\\Vert": "||", "\\lVert": "||", "\\rVert": "||",
    "\\leq": "\\le", "\\geq": "\\ge", "\\ne": "\\neq", "\\leqslant": "\\le",
    "\\geqslant": "\\ge", "\\coloneqq": ":=", "\\triangleq": ":=",
    "\\equiv": ":=", "\\doteq": ":=", "\\defeq": ":=", "\\eqdef": ":=",
    "\\parallel": "||", "\\lvert\\lvert": "||",
    "\\eqqcolon": "=:", "\\dfrac": "\\frac", "\\tfrac": "\\frac",
    "\\lbrace": "\\{", "\\rbrace": "\\}", "\\lbrack": "[", "\\rbrack": "]",
    "\\langle": "\\langle", "\\times": "\\cdot", "\\ast": "\\cdot",
    "\\lparen": "(", "\\rparen": ")",
}  # fmt: skip

# Font commands whose braced argument becomes a single name token.
_FONTS = {
    "\\mathrm", "\\mathbb", "\\mathcal", "\\mathbf", "\\mathsf", "\\mathit",
    "\\operatorname", "\\text", "\\textrm", "\\textit", "\\textbf", "\\rm",
    "\\boldsymbol", "\\bm", "\\mathscr", "\\mathfrak", "\\bf", "\\pmb",
    "\\mathnormal", "\\textnormal", "\\mbox",
}  # fmt: skip

# Calligraphic and blackboard letters are names of their own (\mathcal{L} is
# not L); in the other fonts a single letter is the letter (\mathrm{d} is d).
_SYMBOL_FONTS = {"\\mathbb", "\\mathcal", "\\mathscr", "\\mathfrak"}


def _font_token(font, word, line):
    """The token for ``font{word}``."""
    if re.fullmatch(r"\\[A-Za-z]+", word.strip()):  # \boldsymbol{\theta}: \theta
        return Token("cmd", word.strip(), line)
    if font in _SYMBOL_FONTS:
        return Token("name", f"{font[1:]}:{word}", line)
    if len(word) == 1 and word.isalpha():
        return Token("letter", word, line)
    return Token("name", word, line)


_TOKEN_RE = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<rowsep>\\\\)"
    r"|(?P<cmd>\\[A-Za-z]+|\\[^A-Za-z])"
    r"|(?P<num>\d+(?:\.\d+)?|\.\d+)"
    r"|(?P<letter>[A-Za-z])"
    r"|(?P<assign>:=|=:)"
    r"|(?P<char>[^\s])"
)

_OPEN = {"{": "}", "(": ")", "[": "]"}
_CLOSE = {v: k for k, v in _OPEN.items()}


def _font_argument(src, start, line):
    """The text inside the braces that follow a font command, and its end."""
    i = start
    while i < len(src) and src[i] == " ":
        i += 1
    if i >= len(src) or src[i] != "{":
        # \mathbb E: the argument is one character; \boldsymbol\theta one command.
        command = re.match(r"\\[A-Za-z]+", src[i:])
        if command:
            return command.group(), i + command.end()
        if i < len(src):
            return src[i], i + 1
        raise MalformedLatex("a font command has no argument", line)
    depth, j = 0, i
    while j < len(src):
        if src[j] == "{":
            depth += 1
        elif src[j] == "}":
            depth -= 1
            if depth == 0:
                return src[i + 1 : j], j + 1
        j += 1
    raise MalformedLatex("unbalanced braces: '{' is never closed", line)


def tokenize(src, line=1):
    """Tokens of the math string ``src``; ``line`` is the file line of its start.

    Row separators ``\\\\`` appear as 'char' tokens with text ``\\\\``. Raises
    MalformedLatex when braces or ``( ) [ ]`` do not balance.
    """
    tokens = []
    pos = 0
    cur = line
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        kind, text = m.lastgroup, m.group()
        start_line = cur
        cur += text.count("\n")
        pos = m.end()
        if kind == "space" or text == "~":
            continue
        if kind == "rowsep":
            tokens.append(Token("char", "\\\\", start_line))
        elif kind == "cmd":
            text = _SYNONYMS.get(text, text)
            if text in _IGNORED:
                continue
            if text in _FONTS:
                word, pos = _font_argument(src, pos, start_line)
                word = "".join(re.sub(r"\\[,;: !]", "", word).split())
                tokens.append(_font_token(text, word, start_line))
                continue
            if text in ("||", "|", "[", "]", "(", ")", ":=", "=:"):
                tokens.append(Token("char", text, start_line))
            else:
                tokens.append(Token("cmd", text, start_line))
        elif kind == "assign":
            tokens.append(Token("char", text, start_line))
        else:
            tokens.append(Token(kind, text, start_line))
    tokens = merge_accents(tokens, lambda text, at: Token("cmd", text, at))
    if len(tokens) > MAX_LATEX_TOKENS:
        raise MalformedLatex(
            f"more than {MAX_LATEX_TOKENS} tokens in one display (the limit)", line
        )
    _check_balance(tokens, line)
    return tokens


def _check_balance(tokens, line):
    """Raise MalformedLatex unless ``{}``, ``()`` and ``[]`` nest properly, at
    most ``MAX_LATEX_NESTING`` deep (the parser recurses into each level)."""
    stack = []
    for tok in tokens:
        if tok.kind != "char":
            continue
        if tok.text in _OPEN:
            stack.append(tok)
            if len(stack) > MAX_LATEX_NESTING:
                raise MalformedLatex(
                    f"brackets nest more than {MAX_LATEX_NESTING} deep "
                    "(the limit of a display)",
                    tok.line,
                )
        elif tok.text in _CLOSE:
            if not stack:
                raise MalformedLatex(
                    f"unbalanced brackets: '{tok.text}' closes nothing", tok.line
                )
            opened = stack.pop()
            if _OPEN[opened.text] != tok.text:
                raise MalformedLatex(
                    f"unbalanced brackets: '{opened.text}' (line {opened.line}) "
                    f"is closed by '{tok.text}'",
                    tok.line,
                )
    if stack:
        tok = stack[-1]
        raise MalformedLatex(
            f"unbalanced brackets: '{tok.text}' is never closed", tok.line
        )


_ENV_RE = re.compile(r"\\(begin|end)\{([^}]*)\}")
#: Environments whose rows (``\\``) are lines of one chain and whose cells
#: (``&``) are joined; ``equation`` and ``multline`` have one row or a wrapped one.
_ROW_ENVS = {
    "aligned", "align", "align*", "split", "gathered", "gather", "gather*",
    "equation", "equation*", "eqnarray", "eqnarray*", "multline", "multline*",
    "flalign", "flalign*", "alignat", "alignat*", "alignedat", "array",
    "displaymath", "math",
}  # fmt: skip
#: Environments that may stand alone in Markdown (outside ``$$``).
_TOP_ENVS = r"equation|align|gather|multline|eqnarray|flalign|alignat|displaymath"
_TAG_RE = re.compile(r"\\tag\*?\{([^}]*)\}")
_FENCE_RE = re.compile(r"^(```|~~~)")
# Markup around the math that means nothing to its value: labels, numbering
# switches, comments, the column specification of an array or alignat.
_DROPPED_RE = re.compile(
    r"\\label\{[^}]*\}|\\nonumber\b|\\notag\b|\\\\\[[^\]]*\]"
    r"|(?<=\\begin\{array\})\{[^}]*\}|(?<=\\begin\{alignat\})\{[^}]*\}"
    r"|(?<=\\begin\{alignat\*\})\{[^}]*\}|(?<=\\begin\{alignedat\})\{[^}]*\}"
)
_COMMENT_RE = re.compile(r"(?<!\\)%[^\n]*")
#: A ``cases`` environment (a piecewise definition) becomes one command.
_CASES_RE = re.compile(r"\\begin\{cases\}.*?\\end\{cases\}", re.S)
_OPENER_RE = re.compile(r"\$\$|(?<!\\)\\\[|\\begin\{(" + _TOP_ENVS + r")(\\?\*)?\}")


_INLINE_CODE_RE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")


def mask_fences(text):
    """``text`` with fenced code blocks and inline code spans (`` `$$ ... $$` ``
    in prose that tells how to write a display) blanked, newlines and
    columns kept, so ``$$`` in code is not read as math."""
    out, inside = [], False
    for ln in text.split("\n"):
        if _FENCE_RE.match(ln.lstrip()):
            inside = not inside
            out.append("")
        else:
            out.append("" if inside else _INLINE_CODE_RE.sub(_spaces, ln))
    return "\n".join(out)


def _spaces(m):
    return " " * len(m.group())


def _unescape(src):
    """Markdown escapes inside math undone: ``\\*`` -> ``*``, ``\\_`` -> ``_``."""
    return src.replace("\\*", "*").replace("\\_", "_")


@dataclass(frozen=True)
class Span:
    """Where a display sits: first and last file line, its math, and an
    error when it is not closed."""

    line: int
    end: int
    source: str
    error: str | None = None


def display_spans(text, first_line=1):
    """Every display of the Markdown ``text``, in order, as :class:`Span`.

    A display is ``$$ ... $$``, ``\\[ ... \\]`` or a bare math environment
    (``\\begin{align*} ... \\end{align*}``, also markdown-escaped as
    ``align\\*``). Fenced code is skipped. An opener that is not closed
    before the paragraph ends is a span with an ``error``; reading goes on
    at the next line.
    """
    masked = mask_fences(text)
    spans, pos = [], 0

    def line_at(i):
        return first_line + masked.count("\n", 0, i)

    while True:
        m = _OPENER_RE.search(masked, pos)
        if m is None:
            return spans
        start = m.end()
        if m.group() == "$$":
            close = masked.find("$$", start)
            end_at, inner_end = close + 2, close
        elif m.group() == "\\[":
            close = re.compile(r"(?<!\\)\\\]").search(masked, start)
            close = close.start() if close else -1
            end_at, inner_end = close + 2, close
        else:
            env = re.escape(m.group(1)) + r"(\\?\*)?"
            close_m = re.compile(r"\\end\{" + env + r"\}").search(masked, start)
            close = close_m.start() if close_m else -1
            end_at = close_m.end() if close_m else -1
            inner_end, start = end_at, m.start()  # keep the environment
        inner = masked[start:inner_end] if close >= 0 else ""
        line = line_at(m.start())
        if close < 0 or re.search(r"\n[ \t>]*\n", inner):
            eol = masked.find("\n", m.end())
            eol = len(masked) if eol < 0 else eol
            what = m.group().replace("\\*", "*")
            spans.append(
                Span(line, line, masked[m.end() : eol], f"'{what}' is never closed")
            )
            pos = eol
            continue
        spans.append(Span(line, line_at(end_at), inner))
        pos = end_at


def displays(text, first_line=1):
    """Every display of the Markdown ``text``, in order (see ``display_spans``).

    ``first_line`` is the file line of the first character of ``text``. A
    display that cannot be read is returned with its ``error`` set and no rows;
    the others are unaffected.
    """
    found = []
    for span in display_spans(text, first_line):
        if span.error is not None:
            found.append(Display(span.line, span.source, (), (), span.error,
                                 span.end, span.line))  # fmt: skip
            continue
        try:
            disp = read_display(span.source, span.line)
        except MalformedLatex as err:
            found.append(Display(span.line, span.source, (), (), str(err),
                                 span.end, err.line or span.line))  # fmt: skip
            continue
        found.append(Display(disp.line, disp.source, disp.rows, disp.tags,
                             None, span.end, notes=disp.notes))  # fmt: skip
    return found


def _clean(src, notes):
    """The math of a display without comments, escapes, labels and numbering
    switches (newlines kept, so token lines stay file lines); remarks the
    source level drops go to ``notes``."""
    src = _COMMENT_RE.sub("", src)
    src = _unescape(src)
    src = _CASES_RE.sub(lambda m: " \\cases " + "\n" * m.group().count("\n"), src)

    src = spelling.clean_source(src, notes)

    def blank(m):
        keep = "\\\\" if m.group().startswith("\\\\[") else ""
        return keep + " " * (len(m.group()) - len(keep))

    return _DROPPED_RE.sub(blank, src)


def read_display(src, line):
    """Split one display's source into rows of tokens (see :class:`Display`)."""
    notes = []
    src = _clean(src, notes)
    if not src.strip():
        raise MalformedLatex("empty equation: the display holds no math", line)
    tags = tuple(t.strip() for t in _TAG_RE.findall(src))
    body = _TAG_RE.sub(lambda m: " " * len(m.group()), src)
    stack = []
    for m in _ENV_RE.finditer(body):
        at = line + body.count("\n", 0, m.start())
        kind, env = m.groups()
        if env not in _ROW_ENVS:
            raise MalformedLatex(f"unknown environment '{env}'", at)
        if kind == "begin":
            stack.append(env)
        elif not stack or stack.pop() != env:
            raise MalformedLatex(f"'\\end{{{env}}}' without a matching begin", at)
    if stack:
        raise MalformedLatex(f"'\\begin{{{stack[-1]}}}' is never ended", line)
    # Blank the environment markers (keeping newlines), then split rows.
    body = _ENV_RE.sub(lambda m: " " * len(m.group()), body)
    tokens = tokenize(body, line)
    rows, row = [], []
    for tok in tokens:
        if tok.kind == "char" and tok.text == "\\\\":
            rows.append(tuple(row))
            row = []
        else:
            row.append(tok)
    rows.append(tuple(row))
    rows = tuple(tuple(spelling.normalise(r, notes)) for r in rows)
    rows = tuple(r for r in rows if any(t.text not in ("&", ";") for t in r))
    if not rows:
        raise MalformedLatex("empty equation: the display holds no math", line)
    return Display(line, src, rows, tags, notes=tuple(notes))
