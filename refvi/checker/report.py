"""Text and JSON reports of verified derivations (``refvi verify``), and the exit code.

Each displayed line is reported with its verdict (``holds``, ``fails``,
``undetermined``, ``unsupported``, ``unchecked``; ``refvi.checker.results``),
the route that computed its sides, and the margin by which it holds (positive)
or fails (negative). The JSON report follows the versioned schema shipped
as ``refvi/checker/report_schema.json`` (``SCHEMA_VERSION``).

Exit codes (:func:`exit_code`): 0 when every displayed line of every file
holds; 1 when a line fails; 2 on malformed input (a ``path:line: error:``);
3, under ``--strict`` (the default), when nothing fails but a line is
undetermined, unsupported or unchecked, or a file has no displayed line.
"""

import json
import math
from importlib import resources

from refvi.checker.judge import FAILS, HOLDS, UNDETERMINED
from refvi.checker.results import UNCHECKED, UNSUPPORTED, VERDICTS

SCHEMA_VERSION = 1
LATEX_WIDTH = 48

#: Exit codes of ``refvi verify``.
EXIT_HOLD, EXIT_FAIL, EXIT_ERROR, EXIT_NOT_SHOWN = 0, 1, 2, 3


def schema():
    """The JSON Schema of :func:`to_json`'s output, as a dict."""
    text = resources.files("refvi.checker").joinpath("report_schema.json").read_text()
    return json.loads(text)


def _latex_start(latex, width=LATEX_WIDTH):
    """The first ``width`` characters of the LaTeX, on one line."""
    flat = " ".join(latex.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _counts(results):
    return {v: sum(r.count(v) for r in results) for v in VERDICTS}


def _summary(counts):
    lines = sum(counts.values())
    return (
        f"{lines} lines: {counts[HOLDS]} hold, {counts[FAILS]} fail, "
        f"{counts[UNDETERMINED]} undetermined, {counts[UNSUPPORTED]} unsupported, "
        f"{counts[UNCHECKED]} unchecked"
    )


def _number(x, fmt="+.2e"):
    return "-" if x is None else format(x, fmt)


def _row(r, result=None):
    """One line of the text report for a ``LineResult`` of ``result``; a
    notebook's line is named ``cell N, line M`` with the LaTeX on its row and
    the verdict on the next."""
    head = f"  L{r.line:<5d} {_latex_start(r.latex):<{LATEX_WIDTH}}"
    if result is not None and result.cells is not None:
        head = f"  {result.where(r.line)}: {_latex_start(r.latex)}\n{' ' * 9}"
        head += " " * LATEX_WIDTH
    if r.verdict in (UNCHECKED, UNSUPPORTED):
        return f"{head}  {r.verdict}: {r.reason}  [{r.method}]"
    error = "" if not r.error else f" ±{r.error:.1e}"  # inf prints as ±inf
    return (
        f"{head}  {r.relation:<5s} {r.verdict:<12s} dev {_number(r.deviation)}"
        f"{error}  tol {_number(r.tolerance, '.0e')}  margin {_number(r.margin)}"
        f"  [{r.method}: {r.route}]"
    )


def _error_row(line, message, result):
    """The row of a display that cannot be read: an error, not a verdict."""
    where = f"L{line:<5d}" if result.cells is None else f"{result.where(line)}:"
    return f"  {where} error: {message}"


def format_file(result, name=None, explain=False):
    """The report of one ``FileResult`` as text lines.

    One row per displayed line: source line, start of the LaTeX, relation,
    verdict, deviation (largest over all instances; for ``!=`` the smallest
    separation, for an inequality the largest excess, negative when it holds
    with room; for ``~`` the largest |z|) with its numerical error estimate,
    the tolerance, the margin, and ``[front end: route]``. An undetermined
    line says why; a failing line its hint, when the hint library has one;
    then the LaTeX checker's notes and, with ``explain``, how the LaTeX was
    read. The last row counts the lines per verdict; a file with no line
    that holds or fails says that nothing was checked.
    """
    name = name or result.path
    rows = [f"{name}  [{', '.join(result.settings)}; {result.seeds} seeds each]"]
    rows.extend(f"  note: {n}" for n in result.notes)
    errors = sorted(result.errors)
    for r in result.lines:
        while errors and errors[0][0] < r.line:  # an unreadable display, in place
            rows.append(_error_row(*errors.pop(0), result))
        rows.append(_row(r, result))
        if r.verdict == UNDETERMINED and r.reason:
            rows.append(f"          undetermined: {r.reason}")
        if r.hint:
            rows.append(f"          line {r.line} fails; its value equals {r.hint}")
        rows.extend(f"          {note}" for note in r.note)
        if explain:
            rows.extend(f"          {line}" for line in r.explain)
    rows.extend(_error_row(*e, result) for e in errors)
    rows.extend(f"  warning: {w}" for w in result.warnings)
    if result.count(HOLDS) + result.count(FAILS) == 0:
        rows.append(f"  {name}: no line was checked: nothing holds or fails")
    rows.append(f"  {name}: {_summary(result.counts)}")
    return rows


def exit_code(results, errors=(), strict=True):
    """0, 1, 2 or 3 as the module docstring says."""
    if errors:
        return EXIT_ERROR
    if any(not r.ok for r in results):
        return EXIT_FAIL
    if strict and not all(r.all_hold for r in results):
        return EXIT_NOT_SHOWN
    return EXIT_HOLD


def format_total(results, errors=(), strict=True):
    """The overall summary line, with the exit code and why."""
    counts = _counts(results)
    code = exit_code(results, errors, strict)
    why = {
        EXIT_HOLD: "every line holds" if strict else "no line fails",
        EXIT_FAIL: "a line fails",
        EXIT_ERROR: f"{len(errors)} file(s) with errors",
        EXIT_NOT_SHOWN: "strict: a line is not shown to hold",
    }[code]
    return f"total: {_summary(counts)} ({len(results)} files); exit {code}: {why}"


def _finite(x):
    """A finite float, or None (JSON has no inf or NaN)."""
    return None if x is None or not math.isfinite(x) else float(x)


def _line(line, result):
    """A line as the JSON report lists it; a notebook's line is its line in
    the cell ``cell``."""
    cell, at = result.cell_of(line.line)
    out = {"cell": cell} if cell is not None else {}
    return out | {
        "line": at,
        "latex": line.latex,
        "relation": line.relation,
        "verdict": line.verdict,
        "deviation": _finite(line.deviation),
        "error": _finite(line.error),
        "tolerance": _finite(line.tolerance),
        "margin": _finite(line.margin),
        "route": line.route or None,
        "method": line.method,
        "reason": line.reason,
        "hint": line.hint,
        "notes": list(line.note),
    }


def error_object(path, line, kind, message, cell=None):
    """An error as the JSON report lists it (a notebook's: line in ``cell``)."""
    out = {"path": str(path), "line": line, "kind": kind, "message": message}
    return out if cell is None else out | {"cell": cell}


def to_json(results, errors=(), strict=True):
    """The report as a JSON string (schema ``report_schema.json``, version
    ``SCHEMA_VERSION``); ``errors`` are :func:`error_object` dicts."""
    files = [
        {
            "path": r.path,
            "settings": list(r.settings),
            "seeds": r.seeds,
            "counts": r.counts,
            "lines": [_line(line, r) for line in r.lines],
            "warnings": list(r.warnings),
        }
        for r in results
    ]
    return json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "strict": strict,
            "exit_code": exit_code(results, errors, strict),
            "counts": _counts(results),
            "files": files,
            "errors": list(errors),
        },
        indent=2,
    )
