"""The LaTeX checker inside ``refvi verify`` (``refvi.checker.derivation``).

The derivation checker hands over the displays that have no check block (or
all of them, with ``--latex-only``); :func:`latex_line_results` checks them
from their LaTeX and returns one line result per relation, in the derivation
checker's own result type (``results.LineResult``), marked
``method='latex'``.
"""

from refvi.checker.latex.check import DEFAULT_SIGMAS, OP_TEXT, check_latex_text
from refvi.checker.results import UNCHECKED, LineResult

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
    for label, status, _ in r.readings:
        out.append(f"ambiguous; reading {label}: {status}")
    for name, status, _ in r.assumptions:
        out.append(f"assuming {name}: {status}")
    return tuple(out)


def latex_line_results(source, path, lines, seeds, tolerance, separation,
                       sigmas=DEFAULT_SIGMAS):  # fmt: skip
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
    tolerance, separation, sigmas : float
        The file's tolerance of ``=`` and inequalities, separation of
        ``\\neq`` and standard errors of ``\\approx`` (the judge's, as for the
        check blocks).

    Returns
    -------
    by_display : dict
        Display line -> list of ``results.LineResult`` (one per relation, or
        one for a line that is unsupported, a definition or an expression).
    warnings : list of str
        Ambiguity warnings, ``path:line: ambiguous: ...``.
    errors : list of (int, str)
        (line, message) of each display that cannot be read (malformed
        LaTeX): an error for that display only, the others are still checked.
    """
    result = check_latex_text(
        source,
        path,
        seeds=seeds,
        tol=tolerance,
        separation=separation,
        only_lines=set(lines),
        sigmas=sigmas,
    )
    by_display, errors = {}, []
    starts = sorted(set(lines))
    for r in result.lines:
        display = max(s for s in starts if s <= r.line)
        verdict, reason = r.status, r.reason
        if r.status == "malformed":  # this display only; the others go on
            errors.append((r.line, r.reason))
            continue
        if r.status in _UNCHECKED:
            verdict, reason = UNCHECKED, _UNCHECKED[r.status]
        by_display.setdefault(display, []).append(
            LineResult(
                r.line,
                r.latex,
                OP_TEXT.get(r.op, r.op or "-"),
                verdict,
                deviation=r.deviation,
                error=r.error,
                tolerance=r.tolerance,
                margin=r.margin,
                route=r.route,
                reason=reason,
                method="latex",
                hint=r.hint,
                note=_note(r),
                explain=tuple(r.explain),
            )
        )
    return by_display, result.warnings, errors
