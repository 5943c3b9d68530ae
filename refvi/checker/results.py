"""The verdicts ``refvi verify`` reports: one ``LineResult`` per displayed relation.

Verdicts: ``holds``, ``fails``, ``undetermined`` (the numerical error is too
large to decide, or a side diverges or overflows; ``reason`` says which),
``unsupported`` (the LaTeX front end cannot read the line; ``reason`` says
why) and ``unchecked`` (an ``unchecked:`` block, a definition, or an
expression without a relation; ``reason`` says which). A display that cannot
be read at all (malformed LaTeX) has no verdict: it is an error of its file
(``FileResult.errors``), for that display only.
"""

from dataclasses import dataclass, field

from refvi.checker.judge import FAILS, HOLDS, UNDETERMINED

UNSUPPORTED, UNCHECKED = "unsupported", "unchecked"
VERDICTS = (HOLDS, FAILS, UNDETERMINED, UNSUPPORTED, UNCHECKED)


@dataclass
class LineResult:
    """The verdict on one displayed line (worst case over all instances).

    ``deviation``, ``error``, ``tolerance`` and ``margin`` are those of the
    worst instance (``judge.Comparison``); ``route`` names how the sides were
    computed and ``method`` which front end read the line (``block`` or
    ``latex``); ``hint`` says what a failing side computes, when the hint
    library knows; ``kind`` what an unchecked line is (``definition``,
    ``expression``); ``failing`` the instances on which the line fails,
    ``skipped`` a setting left out and why; ``readings`` and ``assumptions``
    the verdict under each reading of ambiguous LaTeX and each declared
    assumption, as ``(label, verdict, deviation)``; ``explain`` how the LaTeX
    was read.
    """

    line: int
    latex: str
    relation: str
    verdict: str
    deviation: float | None = None
    error: float | None = None
    tolerance: float | None = None
    margin: float | None = None
    route: str = ""
    reason: str | None = None
    method: str = "block"
    hint: str | None = None
    kind: str | None = None
    failing: str | None = None
    skipped: str | None = None
    readings: tuple = ()
    assumptions: tuple = ()
    explain: tuple = ()

    @classmethod
    def judged(cls, line, latex, relation, comparison, **kwargs):
        """The line's result from the judge's worst ``Comparison``."""
        c = comparison
        fields = dict(deviation=c.deviation, error=c.error, tolerance=c.tolerance,
                      margin=c.margin, route=c.route, reason=c.reason)  # fmt: skip
        return cls(line, latex, relation, c.verdict, **(fields | kwargs))

    @property
    def status(self):
        """The verdict, or for an unchecked line its ``kind`` if it has one."""
        return self.kind if self.verdict == UNCHECKED and self.kind else self.verdict

    @property
    def note(self):
        """The further lines a report prints under the line."""
        out = [f"fails on {self.failing}"] if self.failing else []
        out += [self.skipped] if self.skipped else []
        out += [f"ambiguous; reading {r}: {v}" for r, v, _ in self.readings]
        out += [f"assuming {a}: {v}" for a, v, _ in self.assumptions]
        return tuple(out)

    @property
    def holds(self):
        return self.verdict == HOLDS

    @property
    def unchecked(self):
        """The reason of an unchecked or unsupported line, else None."""
        if self.verdict in (UNCHECKED, UNSUPPORTED):
            prefix = "" if self.verdict == UNCHECKED else "unsupported: "
            return prefix + str(self.reason)
        return None


@dataclass
class FileResult:
    """The verdicts on one derivation file."""

    path: str
    settings: list
    seeds: int
    lines: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    cells: object = None  # a notebook's cells: ``cells.where(line)``
    notes: list = field(default_factory=list)  # what the reader decided
    errors: list = field(default_factory=list)  # (line, message): unreadable displays

    def where(self, line):
        """``line`` as a report names it: a notebook's ``cell N, line M``."""
        return self.cells.where(line) if self.cells is not None else str(line)

    def file_line(self, line):
        """The line of the file itself: for a notebook, of its JSON."""
        return self.cells.file_line(line) if self.cells is not None else line

    def cell_of(self, line):
        """(cell, line in the cell) of a notebook's ``line``, else (None, line)."""
        return self.cells.cell_of(line) if self.cells is not None else (None, line)

    def count(self, verdict):
        return sum(r.verdict == verdict for r in self.lines)

    @property
    def counts(self):
        """Lines per verdict, every verdict present."""
        return {v: self.count(v) for v in VERDICTS}

    @property
    def checked(self):
        """Lines the judge decided or could not decide (not unchecked/unsupported)."""
        return sum(r.verdict in (HOLDS, FAILS, UNDETERMINED) for r in self.lines)

    @property
    def hold(self):
        return self.count(HOLDS)

    @property
    def unchecked(self):
        return self.count(UNCHECKED) + self.count(UNSUPPORTED)

    @property
    def ok(self):
        """No line fails."""
        return self.count(FAILS) == 0

    @property
    def all_hold(self):
        """Every displayed line holds, and there is at least one."""
        return bool(self.lines) and self.hold == len(self.lines)
