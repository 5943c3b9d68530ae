"""The LaTeX checker inside ``refvi verify`` (``refvi.checker.derivation``).

The derivation checker hands over the displays that have no check block (or
all of them, with ``--latex-only``); :func:`latex_line_results` checks them
from their LaTeX and returns one line result per relation, in the derivation
checker's own result type, marked ``method='latex'``.
"""

from refvi.checker.latex.check import OP_TEXT, check_latex_text

_UNCHECKED = {
    "definition": "a definition (:=), recorded, not checked",
    "expression": "an expression without a relation",
}


def _note(r):
    """The lines a report prints under a LaTeX-checked line."""
    out = []
    if r.failing:
        out.append(f"fails on {r.failing}")
    if r.skipped:
        out.append(r.skipped)
    if r.hint:
        out.append(f"line {r.line} fails; its value equals {r.hint}")
    for label, status, _ in r.readings:
        out.append(f"ambiguous; reading {label}: {status}")
    for name, status, _ in r.assumptions:
        out.append(f"assuming {name}: {status}")
    return tuple(out)


def latex_line_results(source, path, lines, seeds, make):
    """Check the displays opening at file ``lines`` of ``source`` from LaTeX.

    Parameters
    ----------
    source : str
        The derivation's text (front matter included).
    path : str
    lines : iterable of int
        1-based lines of the ``$$`` of the displays to check.
    seeds : int
        Instances per setting.
    make : callable
        The result type: ``make(line=, latex=, relation=, deviation=, holds=,
        unchecked=, method=, note=, explain=)``.

    Returns
    -------
    by_display : dict
        Display line -> list of results (one per relation, or one for a line
        that is unsupported, a definition or an expression).
    warnings : list of str
        Ambiguity warnings, ``path:line: ambiguous: ...``.

    Raises ``MalformedLatex`` on LaTeX that cannot be read.
    """
    result = check_latex_text(source, path, seeds=seeds, only_lines=set(lines))
    by_display = {}
    starts = sorted(set(lines))
    for r in result.lines:
        display = max(s for s in starts if s <= r.line)
        if r.status in ("holds", "fails"):
            unchecked, holds = None, r.status == "holds"
        elif r.status == "unsupported":
            unchecked, holds = f"unsupported: {r.reason}", False
        elif r.status == "malformed":
            unchecked, holds = f"error: {r.reason}", False
        else:
            unchecked, holds = _UNCHECKED[r.status], False
        by_display.setdefault(display, []).append(
            make(
                line=r.line,
                latex=r.latex,
                relation=OP_TEXT.get(r.op, r.op or "-"),
                deviation=r.deviation,
                holds=holds,
                unchecked=unchecked,
                method="latex",
                note=_note(r),
                explain=tuple(r.explain),
            )
        )
    return by_display, result.warnings
