"""Spellings of the same mathematics made one: what ``tokens`` hands the parser.

People write a KL bar as ``\\|``, ``||``, ``\\Vert``, ``\\vert\\vert`` or
``\\parallel``; a logarithm as ``\\log``, ``log``, ``ln``, ``\\text{log}`` or
``\\operatorname{log}``; a fraction as ``\\frac``, ``\\dfrac`` or ``{a \\over
b}``; and they annotate their lines with ``\\text{...}`` remarks,
``\\quad (2.1)`` numbers, ``\\overset{\\text{Jensen}}{\\ge}``, ``\\because``,
``\\therefore`` and ``\\underbrace{...}_{\\text{label}}``. Two passes make
these read the same:

- :func:`clean_source` works on a display's source text (newlines kept, so
  tokens keep their file lines): relations decorated by ``\\overset`` or
  ``\\stackrel`` become the bare relation (``:=`` when the label says ``def``),
  a reason after ``\\because`` and an equation number after ``\\quad`` go,
  and a parenthesised group after ``\\quad``/``\\qquad`` that ends a row
  (``\\quad (d \\times k)``, ``\\qquad (\\text{by Jensen})``) is a remark,
  not a factor of the value. A group that states a condition (it holds a
  relation, ``(x > 0)``, ``(\\text{for } j \\le k)``, or opens with "if",
  "when", "unless", "provided", "given", "assuming") becomes the command
  ``\\condition``, which the parser reports as unsupported: the checker
  reads a line at every instance of its settings, so a line that holds only
  under its condition is neither checked nor failed;
- :func:`normalise` works on one row of tokens: bars, logarithm and name
  spellings, ``\\underbrace``/``\\overbrace`` (the braced text is the value,
  the label is dropped), ``\\over``, remarks (dropped; a remark that opens a
  condition such as "for all" or "since" drops the rest of the row) and
  connectives between statements (``\\implies``, ``\\therefore``, ...), which
  separate equations like a comma.

The remarks dropped are returned, so a report can show a line's annotation.
"""

import re

from refvi.checker.latex import tokens as _tokens

# -- source level -------------------------------------------------------------

_REL_WORDS = r"=|\\le|\\leq|\\ge|\\geq|<|>|\\neq|\\approx|\\propto|\\equiv"
_DECORATED_REL_RE = re.compile(
    r"\\(?:overset|stackrel|underset)\s*\{((?:[^{}]|\{[^{}]*\})*)\}\s*\{\s*("
    + _REL_WORDS
    + r")\s*\}"
)
_BECAUSE_RE = re.compile(r"\\(?:because|since)\b.*?(?=\\\\|\\end\{|\Z)", re.S)
_NUMBER_RE = re.compile(
    r"\\q?quad\s*(?:\\text\{\s*)?\(\s*[A-Za-z]?\d+(?:\.\d+)*[a-z]?\s*\)\s*\}?\s*"
    r"(?=\\\\|\\end\{|\Z)"
)
_EMPTY_DELIM_RE = re.compile(r"\\(?:left|right)\s*\.")
#: ``\quad (`` or ``\qquad \left(``: where a trailing remark may open.
_QUAD_GROUP_RE = re.compile(r"(?:\\q?quad\b\s*)+(?:\\left\s*)?\(")
#: What may follow a row's last group: numbering markup, then the row's end.
_ROW_END_RE = re.compile(
    r"(?:\s|\\tag\*?\{[^{}]*\}|\\label\{[^{}]*\}|\\nonumber\b|\\notag\b)*"
    r"(?:\\\\|\\end\{|\Z)"
)
#: A remark that states a condition: a relation, or a conditional word first.
_CONDITION_GROUP_RE = re.compile(
    r"<|>|=|\\(?:le|ge|leq|geq|neq|ne|lt|gt|in|notin|ll|gg|subset|subseteq)\b"
    r"|^\s*(?:\\text\s*\{\s*)?(?:if|when|whenever|unless|provided|given|assuming)\b",
    re.I,
)
_TEXT_RE = re.compile(r"\\(?:text|textrm|mathrm|mbox)\s*\{([^{}]*)\}")


def _blank(m):
    return re.sub(r"[^\n]", " ", m.group())


def _trailing_remarks(src, notes):
    """``src`` with each ``\\quad (...)`` that ends a row blanked (a remark,
    its text appended to ``notes``) or, when it states a condition, replaced
    by ``\\condition`` (newlines kept)."""
    out, pos = [], 0
    for m in _QUAD_GROUP_RE.finditer(src):
        if m.start() < pos:
            continue
        depth, j = 1, m.end()
        while j < len(src) and depth:
            depth += {"(": 1, ")": -1}.get(src[j], 0)
            j += 1
        if depth or not _ROW_END_RE.match(src, j):
            continue
        inner = src[m.end() : j - 1].removesuffix("\\right")
        notes.append(" ".join(_TEXT_RE.sub(r"\1", inner).split()))
        blank = re.sub(r"[^\n]", " ", src[m.start() : j])
        if _CONDITION_GROUP_RE.search(inner):
            blank = "\\condition" + blank[len("\\condition") :]
        out += [src[pos : m.start()], blank]
        pos = j
    return "".join(out) + src[pos:]


def clean_source(src, notes=None):
    """``src`` with decorated relations made bare, numbers, reasons, trailing
    remarks and empty ``\\left.`` delimiters blanked (newlines kept); the
    trailing remarks go to ``notes``."""
    notes = [] if notes is None else notes

    def relation(m):
        label, rel = m.groups()
        bare = ":=" if re.search(r"def|triangle|\\Delta", label) else rel
        return bare.ljust(len(m.group())) + "\n" * m.group().count("\n")

    src = _DECORATED_REL_RE.sub(relation, src)
    src = _BECAUSE_RE.sub(_blank, src)
    src = _NUMBER_RE.sub(_blank, src)
    src = _trailing_remarks(src, notes)
    return _EMPTY_DELIM_RE.sub(_blank, src)


# -- token level ---------------------------------------------------------------

#: Words (letters written in a row, or a font command's word) that are commands.
_WORDS = {
    "log": "\\log", "Log": "\\log", "ln": "\\ln", "exp": "\\exp",
    "KL": "KL", "ELBO": "ELBO", "Var": "Var", "Cov": "Cov",
}  # fmt: skip
_COMMAND_WORDS = {"\\log", "\\ln", "\\exp"}
#: Names that are vocabulary, not remarks (an operator such as
#: ``\\operatorname{tr}`` is never dropped as a remark: the parser reads it or
#: names it as unsupported).
_NAMES = {"KL", "D_KL", "ELBO", "E", "H", "d", "data", "const", "Var", "Cov",
          "and", "where", "argmax", "argmin", "max", "min", "s.t.", "tr", "Tr",
          "diag", "tril", "softmax", "logsumexp"}  # fmt: skip
#: A remark that opens a condition: the rest of its row is the condition.
_CONDITION_RE = re.compile(
    r"^(for|if|since|because|as|when|whenever|with|by|using|iff|unless|s\.t\.)",
    re.I,
)
#: Connectives between statements: they separate equations.
_CONNECTIVES = {
    "\\implies", "\\Rightarrow", "\\Longrightarrow", "\\iff", "\\Leftrightarrow",
    "\\Longleftrightarrow", "\\therefore", "\\hence", "\\to", "\\longrightarrow",
    "\\impliedby", "\\Leftarrow",
}  # fmt: skip
_BRACES = ("\\underbrace", "\\overbrace")


def _group_end(toks, i):
    """Index one past the ``{...}`` group opening at ``i`` (or the single
    token at ``i``)."""
    if i >= len(toks):
        return i
    if toks[i].text != "{":
        return i + 1
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].text == "{":
            depth += 1
        elif toks[j].text == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(toks)


def _words(toks):
    """Letters spelling ``log``, ``ln``, ``exp``, ``KL``, ``ELBO`` joined, and
    such words from font commands made the command."""
    out, i = [], 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "name" and re.sub(r"[_{}\\ ]|mathrm|text", "", t.text) in (
            "DKL",
            "KL",
        ):
            out.append(_tokens.Token("name", "KL", t.line))
            i += 1
            continue
        if t.kind == "name" and t.text in _WORDS:
            word = _WORDS[t.text]
            kind = "cmd" if word in _COMMAND_WORDS else "name"
            out.append(_tokens.Token(kind, word, t.line))
            i += 1
            continue
        if t.kind == "letter":
            for word in sorted(_WORDS, key=len, reverse=True):
                n = len(word)
                seq = toks[i : i + n]
                if len(seq) == n and all(
                    s.kind == "letter" and s.text == c
                    for s, c in zip(seq, word, strict=True)
                ):
                    canon = _WORDS[word]
                    kind = "cmd" if canon in _COMMAND_WORDS else "name"
                    out.append(_tokens.Token(kind, canon, t.line))
                    i += n
                    break
            else:
                out.append(t)
                i += 1
            continue
        out.append(t)
        i += 1
    return out


def _bars(toks):
    """``| |`` and ``\\parallel`` as one KL bar ``||``."""
    out = []
    for t in toks:
        if t.text == "\\parallel":
            out.append(_tokens.Token("char", "||", t.line))
        elif t.text == "|" and out and out[-1].text == "|":
            out[-1] = _tokens.Token("char", "||", out[-1].line)
        else:
            out.append(t)
    return out


def _braces(toks):
    """``\\underbrace{X}_{label}`` -> ``{X}``; likewise ``\\overbrace{X}^{label}``."""
    out, i = [], 0
    while i < len(toks):
        t = toks[i]
        if t.text in _BRACES:
            end = _group_end(toks, i + 1)
            out.extend(_braces(toks[i + 1 : end]))
            i = end
            if i < len(toks) and toks[i].text in ("_", "^"):
                i = _group_end(toks, i + 1)
            continue
        out.append(t)
        i += 1
    return out


def _over(toks):
    """``{a \\over b}`` -> ``\\frac{a}{b}`` (innermost groups first)."""
    while True:
        at = next((k for k, t in enumerate(toks) if t.text == "\\over"), None)
        if at is None:
            return toks
        depth, start = 0, None
        for k in range(at - 1, -1, -1):
            if toks[k].text == "}":
                depth += 1
            elif toks[k].text == "{":
                if depth == 0:
                    start = k
                    break
                depth -= 1
        line = toks[at].line
        if start is None:  # the whole row is the fraction
            start, end = -1, len(toks)
            inner_lo, inner_hi = 0, len(toks)
        else:
            end = _group_end(toks, start) - 1
            inner_lo, inner_hi = start + 1, end
        num, den = toks[inner_lo:at], toks[at + 1 : inner_hi]
        T = _tokens.Token
        frac = [T("cmd", "\\frac", line), T("char", "{", line), *num,
                T("char", "}", line), T("char", "{", line), *den,
                T("char", "}", line)]  # fmt: skip
        toks = toks[: max(start, 0)] + frac + toks[end + 1 :]


def _remarks(toks, notes):
    """Drop remarks (recorded in ``notes``) and turn connectives into ``;``."""
    out = []
    for t in toks:
        scripted = bool(out) and (
            out[-1].text in ("_", "^")
            or (out[-1].text == "{" and len(out) > 1 and out[-2].text in ("_", "^"))
        )
        if t.kind == "name" and t.text not in _NAMES and ":" not in t.text:
            if len(t.text) > 1 and not t.text.startswith("\\") and not scripted:
                notes.append(t.text)
                if _CONDITION_RE.match(t.text):
                    break
                continue
        if t.text in _CONNECTIVES:
            out.append(_tokens.Token("char", ";", t.line))
            continue
        out.append(t)
    # brackets left empty by a dropped remark go with it: "(\text{Jensen})"
    changed = True
    while changed:
        changed = False
        for k in range(len(out) - 1):
            pair = (out[k].text, out[k + 1].text)
            if pair in (("(", ")"), ("[", "]")):
                del out[k : k + 2]
                changed = True
                break
    return out


def normalise(toks, notes=None):
    """One row of tokens in the canonical spelling; remarks go to ``notes``."""
    notes = [] if notes is None else notes
    toks = _words(list(toks))
    toks = _bars(toks)
    toks = _braces(toks)
    toks = _over(toks)
    return _remarks(toks, notes)
