"""Jupyter notebooks as derivations: their Markdown cells, in order.

``markdown_of(text)`` joins the Markdown (and raw) cells of an ``.ipynb``
file's JSON into one Markdown text, a blank line between cells, so the
derivation checker reads a notebook as it reads a ``.md`` file; a raw first
cell holding ``---`` front matter (as Quarto writes it) is the front matter.
``Cells.where(line)`` turns a line of that text back into ``cell N, line M``
(cells counted from 1 over all cells, code cells included, as Jupyter shows
them).
"""

import json
from dataclasses import dataclass


class NotebookError(ValueError):
    """The file is not a notebook this reader understands."""


@dataclass(frozen=True)
class Cells:
    """For each line of the joined text: (cell number, line in the cell)."""

    origin: tuple

    def where(self, line):
        """``'cell N, line M'`` for a 1-based line of the joined text."""
        if 1 <= line <= len(self.origin) and self.origin[line - 1] is not None:
            cell, at = self.origin[line - 1]
            return f"cell {cell}, line {at}"
        return f"line {line}"


def markdown_of(text):
    """(Markdown text, Cells) of the notebook whose JSON is ``text``."""
    try:
        nb = json.loads(text)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError) as err:
        raise NotebookError(f"not a Jupyter notebook: {err}") from None
    lines, origin = [], []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") not in (
            "markdown",
            "raw",
        ):
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(s) for s in source)
        if not isinstance(source, str):
            raise NotebookError(f"cell {number}: its source is not text")
        if lines:
            lines.append("")
            origin.append(None)
        for at, ln in enumerate(source.split("\n"), start=1):
            lines.append(ln)
            origin.append((number, at))
    return "\n".join(lines) + "\n", Cells(tuple(origin))
