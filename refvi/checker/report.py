"""Text and JSON reports of verified derivations (``refvi verify``)."""

import json

LATEX_WIDTH = 48


def _latex_start(latex, width=LATEX_WIDTH):
    """The first ``width`` characters of the LaTeX, on one line."""
    flat = " ".join(latex.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _summary(checked, hold, unchecked):
    return f"{checked} lines checked, {hold} hold, {unchecked} unchecked"


def format_file(result, name=None, explain=False):
    """The report of one ``FileResult`` as text lines.

    One row per displayed line: source line, start of the LaTeX, relation,
    largest deviation over all instances (for ``!=`` the smallest separation;
    for an inequality the largest excess, negative when it holds with room),
    and ``ok``/``FAIL``; an unchecked line shows its reason. Each row ends with
    ``[block]`` or ``[latex]`` (checked from its LaTeX alone), followed by the
    LaTeX checker's notes (hints, readings, assumptions) and, with
    ``explain``, how the LaTeX was read.
    """
    name = name or result.path
    rows = [f"{name}  [{', '.join(result.settings)}; {result.seeds} seeds each]"]
    rows.extend(f"  note: {n}" for n in getattr(result, "notes", ()))
    for r in result.lines:
        head = f"  L{r.line:<5d} {_latex_start(r.latex):<{LATEX_WIDTH}}"
        if getattr(result, "cells", None) is not None:  # a notebook
            head = f"  {result.where(r.line)}: {_latex_start(r.latex)}\n{' ' * 9}"
            head += " " * LATEX_WIDTH
        if r.unchecked is not None:
            rows.append(f"{head}  unchecked: {r.unchecked}  [{r.method}]")
        else:
            dev = "-" if r.deviation is None else f"{r.deviation:+.2e}"
            mark = "ok" if r.holds else "FAIL"
            rows.append(f"{head}  {r.relation:<5s} {dev:>10s}  {mark}  [{r.method}]")
        rows.extend(f"          {note}" for note in r.note)
        if explain:
            rows.extend(f"          {line}" for line in r.explain)
    rows.extend(f"  warning: {w}" for w in result.warnings)
    rows.append(f"  {name}: {_summary(result.checked, result.hold, result.unchecked)}")
    return rows


def format_total(results):
    """The overall summary line."""
    checked = sum(r.checked for r in results)
    hold = sum(r.hold for r in results)
    unchecked = sum(r.unchecked for r in results)
    return f"total: {_summary(checked, hold, unchecked)} ({len(results)} files)"


def to_json(results, errors=()):
    """The same content as a JSON string."""
    files = [
        {
            "path": r.path,
            "settings": r.settings,
            "seeds": r.seeds,
            "checked": r.checked,
            "hold": r.hold,
            "unchecked": r.unchecked,
            "lines": [
                {
                    "line": line.line,
                    "latex": line.latex,
                    "relation": line.relation,
                    "deviation": line.deviation,
                    "holds": line.holds if line.unchecked is None else None,
                    "unchecked": line.unchecked,
                    "method": line.method,
                    "notes": list(line.note),
                }
                for line in r.lines
            ],
        }
        for r in results
    ]
    return json.dumps(
        {
            "files": files,
            "checked": sum(r.checked for r in results),
            "hold": sum(r.hold for r in results),
            "unchecked": sum(r.unchecked for r in results),
            "errors": list(errors),
        },
        indent=2,
    )
