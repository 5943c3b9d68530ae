"""Jupyter notebooks as derivations: their Markdown cells, in order.

``markdown_of(text)`` joins the Markdown (and raw) cells of an ``.ipynb``
file's JSON into one Markdown text, a blank line between cells, so the
derivation checker reads a notebook as it reads a ``.md`` file; a raw first
cell holding ``---`` front matter (as Quarto writes it) is the front matter.
``Cells.where(line)`` turns a line of that text back into ``cell N, line M``
(cells counted from 1 over all cells, code cells included, as Jupyter shows
them), and ``Cells.file_line(line)`` into the line of the ``.ipynb`` file
(its JSON) that holds it, for annotations on the file itself.
"""

import json
import re
from dataclasses import dataclass


class NotebookError(ValueError):
    """The file is not a notebook this reader understands."""


@dataclass(frozen=True)
class Cells:
    """For each line of the joined text: (cell number, line in the cell), and
    the line of the notebook file holding it (None where unknown)."""

    origin: tuple
    json_lines: tuple = ()

    def cell_of(self, line):
        """(cell, line in the cell) of a 1-based line of the joined text, or
        (None, line) for a line between cells."""
        if 1 <= line <= len(self.origin) and self.origin[line - 1] is not None:
            return self.origin[line - 1]
        return None, line

    def where(self, line):
        """``'cell N, line M'`` for a 1-based line of the joined text."""
        cell, at = self.cell_of(line)
        return f"cell {cell}, line {at}" if cell is not None else f"line {line}"

    def file_line(self, line):
        """The line of the notebook's JSON holding ``line`` of the joined
        text (the line of its cell's source when the layout is unusual)."""
        if 1 <= line <= len(self.json_lines) and self.json_lines[line - 1]:
            return self.json_lines[line - 1]
        return 1


def markdown_of(text):
    """(Markdown text, Cells) of the notebook whose JSON is ``text``."""
    try:
        nb = json.loads(text)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError) as err:
        raise NotebookError(f"not a Jupyter notebook: {err}") from None
    lines, origin, json_lines = [], [], []
    starts = _source_lines(text, len(cells))
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
            json_lines.append(None)
        at_file = starts[number - 1] if starts else []
        for at, ln in enumerate(source.split("\n"), start=1):
            lines.append(ln)
            origin.append((number, at))
            json_lines.append(at_file[min(at, len(at_file)) - 1] if at_file else None)
    return "\n".join(lines) + "\n", Cells(tuple(origin), tuple(json_lines))


_SOURCE_KEY = re.compile(r'(?<!\\)"source"\s*:\s*')


def _source_lines(text, n_cells):
    """Per cell, the file line of each line of its source: a source written
    as a list of strings (as Jupyter writes it) has one string per line; a
    single string sits on one file line. None when the file has a ``"source"``
    key per cell no longer (a key in metadata, an unusual layout)."""
    keys = list(_SOURCE_KEY.finditer(text))
    if len(keys) != n_cells:
        return None
    decoder, out = json.JSONDecoder(), []
    for key in keys:
        pos, starts = key.end(), []
        try:
            if text.startswith("[", pos):
                pos += 1
                while True:
                    while text[pos] in " \t\r\n,":
                        pos += 1
                    if text[pos] == "]":
                        break
                    line = text.count("\n", 0, pos) + 1
                    item, pos = decoder.raw_decode(text, pos)
                    starts += [line] * max(1, str(item).count("\n"))
            else:
                item, _ = decoder.raw_decode(text, pos)
                starts = [text.count("\n", 0, pos) + 1] * (str(item).count("\n") + 1)
        except (ValueError, IndexError):
            return None
        out.append(starts)
    return out
