"""Accented symbols as one token: ``\\bar x``, ``\\hat\\Sigma``, ``\\overline{m}``.

A derivation names a statistic of its data by an accent on a letter: the
mean ``\\bar x`` (``\\bar{x}``, ``\\overline{x}``), the sample covariance
``\\hat\\Sigma`` (``\\hat{\\Sigma}``, ``\\widehat{\\Sigma}``), a mean of
per-datum quantities ``\\bar m``. Each such accent on one letter or one
command becomes one ``cmd`` token in a canonical spelling, ``\\bar{x}`` or
``\\hat{\\Sigma}`` (``\\overline`` reads ``\\bar``, ``\\widehat`` reads
``\\hat``), so the symbol is a name like any other: bound by a setting
(``models.MATRIX_SYMBOLS``), defined by a display or the prose
(``definitions``), indexed (``\\hat\\Sigma_{jj}``). A braced accent on a word
or a font letter names an estimator (``\\widehat{\\operatorname{se}}`` reads
``\\hat{se}``, ``\\hat{\\mathbb{E}}`` reads ``\\hat{\\mathbb{E}}``,
``estimators``). ``\\hat`` on ``p`` or
``q`` is left alone: ``\\hat q`` is the best member of a restricted family
(``parser.Parser.skip_hat_q``).
"""

#: Accent commands, by the canonical accent they read as.
ACCENTS = {"\\bar": "\\bar", "\\overline": "\\bar", "\\hat": "\\hat",
           "\\widehat": "\\hat"}  # fmt: skip
#: Bases an accent leaves as two tokens (densities: \hat q, \hat p).
_DENSITIES = ("p", "q")


def accented(accent, base):
    """The canonical text of ``accent`` on ``base`` (``\\bar{x}``); a font
    letter (``mathbb:E``) is spelled as written (``\\hat{\\mathbb{E}}``)."""
    font, colon, letter = base.partition(":")
    if colon:
        base = f"\\{font}{{{letter}}}"
    return f"{ACCENTS[accent]}{{{base}}}"


def merge_accents(tokens, make):
    """``tokens`` with each accent on one letter or command (bare or braced)
    made one token by ``make(text, line)``."""
    out, i = [], 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "cmd" and t.text in ACCENTS:
            base, width = _base(tokens, i + 1)
            if base is not None and base.text not in _DENSITIES:
                out.append(make(accented(t.text, base.text), t.line))
                i += 1 + width
                continue
        out.append(t)
        i += 1
    return out


def _base(tokens, j):
    """(the letter or command an accent at ``j - 1`` takes, tokens it spans)."""

    def one(k, kinds=("letter", "cmd")):
        ok = k < len(tokens) and tokens[k].kind in kinds
        return tokens[k] if ok and tokens[k].text not in ACCENTS else None

    if j < len(tokens) and tokens[j].text == "{":
        inner = one(j + 1, ("letter", "cmd", "name"))
        closed = j + 2 < len(tokens) and tokens[j + 2].text == "}"
        return (inner, 3) if inner is not None and closed else (None, 0)
    base = one(j)
    return (base, 1) if base is not None else (None, 0)
