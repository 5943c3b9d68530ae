"""Symbols a derivation defines in its prose, in inline math.

"Write $r = x - \\mu$", "with $g_i = ...$", "let $C_k = ...$", "denote by
$S_k = ...$", "define $t_{ab} = ...$", "depends on the data through $N_k = ...$",
"and $D = ...$", "for (a batch,) $f = ...$": inline math (``$...$`` or
``\\(...\\)``) right after one of the words of ``INTRODUCING`` (or "for",
"for a WORD,"), or after such math in one list with it ("with $a = ...$,
$b = ...$ and $c = ...$": only commas and "and" between them), that holds
one chain with one relation, ``=`` or ``:=``, whose left side is a symbol
that means nothing yet, defines it by the same rules as a display
(``definitions``: reserved vocabulary, data indices and the setting's own
names are never defined; f and D, letters a display reads otherwise, may be
defined here; after "for", a symbol the file defined before is defined
again). A prose definition is not a claim and not a line of the report (a
note says it was recorded); its scope starts where it is written. Inline
math introduced otherwise ("so $a = b$") is not read.
"""

import bisect
import re
from dataclasses import dataclass

from refvi.checker.latex import estimators, noise
from refvi.checker.latex.parser import RELATIONS, split_equations
from refvi.checker.latex.tokens import (
    MalformedLatex,
    display_spans,
    mask_fences,
    read_display,
)

#: The words that introduce a definition in inline math right after them.
INTRODUCING = (
    "write", "writes", "let", "where", "with", "denote by", "denotes by",
    "define", "defines", "set", "sets", "call", "calls", "are", "through",
    "here", "and",
)  # fmt: skip
#: A word of ``INTRODUCING`` anywhere: "and $D = ...$" introduces only in a
#: sentence one of them began ("with weights $g_i$ and $D = ...$").
_ANY_WORD_RE = re.compile(
    r"(?<![\w\\])(?:"
    + "|".join(w.replace(" ", r"\s+") for w in INTRODUCING if w != "and")
    + r")\s",
    re.I,
)
#: What may stand between two inline maths of one list: a comma, "and".
_LIST_RE = re.compile(r"\s*(?:,\s*(?:and\s+)?|and\s+)$", re.I)
_WORD_RE = re.compile(
    r"(?<![\w\\])(?:"
    + "|".join(w.replace(" ", r"\s+") for w in INTRODUCING)
    + r"|for(?:\s+(?:a|an|the)\s+\w+,)?"  # "For $f = ...$", "for a batch, $f = ...$"
    + r")\s+$",
    re.I,
)
_INLINE_RE = re.compile(
    r"(?<![$\\])\$(?!\$)([^$]+?)(?<![\\$])\$(?!\$)|(?<!\\)\\\((.+?)\\\)", re.S
)


@dataclass(frozen=True)
class ProseMath:
    """Inline math introduced by a defining word: its file line, its math,
    and its chain (a list of tokens)."""

    line: int
    source: str
    seq: list
    word: str = ""  # the introducing word, lower case ("for": may define again)


def prose_definitions(text, first_line=1):
    """Every inline math of the Markdown ``text`` outside displays and code
    that may define a symbol (see the module): one chain, one relation,
    ``=`` or ``:=``, introduced by a word of ``INTRODUCING``; in order."""
    masked = mask_fences(text)
    shown = set()
    for span in display_spans(text, first_line):
        shown.update(range(span.line, span.end + 1))
    breaks = [k for k, c in enumerate(masked) if c == "\n"]
    found, listed = [], None  # listed: the end of an introduced list's last math
    for m in _INLINE_RE.finditer(masked):
        line = first_line + bisect.bisect_left(breaks, m.start())
        last = first_line + bisect.bisect_left(breaks, m.end())
        if shown.intersection(range(line, last + 1)):
            listed = None
            continue
        in_list = listed is not None and _LIST_RE.match(masked[listed : m.start()])
        word = _WORD_RE.search(masked[max(0, m.start() - 40) : m.start()])
        if word and word.group().split()[0].lower() == "and":
            start = max(masked.rfind(c, 0, m.start()) for c in ".:;")
            if not _ANY_WORD_RE.search(masked[start + 1 : m.start()]):
                word = None  # "So $a = 1$ and $c = 3$": no defining word
        introduced = in_list or word
        listed = m.end() if introduced else None
        src = m.group(1) if m.group(1) is not None else m.group(2)
        try:
            seqs = split_equations(read_display(src, line))
        except MalformedLatex:
            continue
        if len(seqs) != 1:
            continue
        if not introduced:  # an estimator or a draw defines without a word
            if (estimators.defining(seqs[0], RELATIONS) is None
                    and noise.link(seqs[0]) is None):  # fmt: skip
                continue
            listed = m.end()
        rels = [t for t in seqs[0] if t.text in RELATIONS]
        defines = len(rels) == 1 and rels[0].text in ("=", ":=")
        if defines and seqs[0][-1] is not rels[0]:  # a right side in the math
            intro = word.group().split()[0].lower() if word and not in_list else ""
            found.append(ProseMath(line, " ".join(src.split()), seqs[0], intro))
    return found
