"""The derivation checker behind ``refvi verify``: parse, evaluate, judge.

A derivation is a Markdown file (format: ``derivations/README.md``) whose
front matter names the settings it is claimed for, and in which every
displayed equation ``$$ ... $$`` is followed by a ``check`` block computing
the line numerically, or by ``unchecked: <reason>``. Check expressions are
interpreted by ``refvi.checker.evaluate`` (an allowlist of Python's
expression syntax, no module, no I/O, within limits) with the names of
``Instance.names`` (``refvi.checker.settings``) on several random instances
of every setting.

Consecutive sides of a chain are compared by the relation written before each
one (``=``, ``<=``, ``>=``, ``<``, ``>``, ``!=``, and ``~`` for a Monte Carlo
estimate within k standard errors); a check block whose first
expression starts with a relation continues the chain of the block before it.

Errors in the input (front matter, a display without a check, an unknown name,
a syntax or runtime error, mismatched shapes) raise ``DerivationError``
carrying ``path:line``; a line that evaluates but does not hold is a failed
``LineResult``, and one whose value is NaN or infinite an undetermined
``LineResult`` (the value is not finite), not an error.
"""

import difflib
import re
from dataclasses import dataclass, replace

import numpy as np

from refvi.checker import evaluate, limits, notebook, read
from refvi.checker import settings as settings_module
from refvi.checker.instances import DEFAULT_SEEDS, make_instance
from refvi.checker.judge import (
    DEFAULT_SEPARATION,
    DEFAULT_SIGMAS,
    DEFAULT_TOLERANCE,
    RANK,
    Node,
    Value,
    judge_instances,
)
from refvi.checker.latex import frontmatter as latex_frontmatter
from refvi.checker.latex.check import check_latex_text
from refvi.checker.latex.models import LAYERED as LATEX_ONLY_SETTINGS
from refvi.checker.latex.tokens import MalformedLatex, display_spans
from refvi.checker.measured import Measured, refinement_target
from refvi.checker.namespace import Estimate, Fn
from refvi.checker.read import LIMITS, MALFORMED, UNSUPPORTED, DerivationError
from refvi.checker.results import UNCHECKED, FileResult, LineResult

RELATIONS = ("<=", ">=", "!=", "~", "=", "<", ">")

#: A check line's leading relation (two-character ones tried first).
_RELATION_RE = re.compile(
    "^(" + "|".join(map(re.escape, RELATIONS)) + r")(?!=)\s*(.*)$"
)
_DIRECTIVE_RE = re.compile(r"^(unchecked|tol)\s*:\s*(.*)$")
_LATEX_REL_RE = re.compile(
    r"\\leq?(?![a-zA-Z])|\\geq?(?![a-zA-Z])|\\neq?(?![a-zA-Z])|\\approx(?![a-zA-Z])"
    r"|(?<![\\<>!])=|<|>"
)


# ---------------------------------------------------------------------------
# Parsed form.


@dataclass(frozen=True)
class Side:
    """One expression of a check block and the relation written before it.

    ``relation`` is None for the first side of a new chain.
    """

    relation: str | None
    source: str
    line: int
    code: object
    names: frozenset


@dataclass(frozen=True)
class Check:
    """A displayed equation and its check.

    Attributes
    ----------
    line : int
        Line of the ``$$`` that opens the equation (1-based).
    latex : str
        The equation's LaTeX, on one line.
    sides : tuple of Side
        Empty when the line is unchecked.
    unchecked : str or None
        The reason given after ``unchecked:``.
    tol : float
        Tolerance of this line's comparisons.
    method : str
        ``"block"``, or ``"latex"`` for a display without a check block
        (checked from its LaTeX by ``refvi.checker.latex``).
    """

    line: int
    latex: str
    sides: tuple
    unchecked: str | None
    tol: float
    method: str = "block"


@dataclass(frozen=True)
class Setting:
    """A setting named in the front matter, with its options."""

    name: str
    options: tuple  # ((key, value), ...)
    line: int

    def label(self):
        opts = ", ".join(f"{k}={v}" for k, v in self.options)
        return f"{self.name}({opts})" if opts else self.name


@dataclass(frozen=True)
class Derivation:
    """A parsed derivation file."""

    path: str
    settings: tuple
    seeds: int
    tolerance: float
    separation: float
    sigmas: float
    checks: tuple
    source: str = ""  # the file's text, for the LaTeX checker
    cells: object = None  # a notebook's notebook.Cells (line -> cell, line)
    notes: tuple = ()  # what the reader decided: keys ignored, settings inferred


# ---------------------------------------------------------------------------
# Parsing.


def _front_matter(lines, path):
    """The top-level front-matter entries as {key: (value, line)}, the index
    of the first body line, and notes on what was ignored (see
    ``read.front_matter``: Hugo, Jekyll and Quarto front matter is accepted,
    and a file may have none)."""
    entries, end, ignored = read.front_matter(lines, path)
    notes = []
    if ignored:
        notes.append("front-matter keys ignored (not refvi's): " + ", ".join(ignored))
    meta = {e.key: (e.value, e.line) for e in entries or () if e.section is None}
    return meta, end, notes


def _parse_settings(value, line, path):
    """``a, b(q=diag), c`` -> Setting tuples; options are ``key=value``."""
    items = re.findall(r"\s*([A-Za-z_]\w*)\s*(?:\(([^)]*)\))?\s*(?:,|$)", value)
    rebuilt = ",".join(
        name + (f"({opts})" if opts else "") for name, opts in items if name
    )
    if not items or rebuilt.replace(" ", "") != value.replace(" ", "").rstrip(","):
        raise DerivationError(path, line, f"cannot read settings {value!r}")
    out = []
    for name, opts in items:
        if not name:
            continue
        if name not in settings_module.SETTINGS and name not in LATEX_ONLY_SETTINGS:
            names = sorted(settings_module.SETTINGS) + sorted(LATEX_ONLY_SETTINGS)
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise DerivationError(
                path,
                line,
                f"unknown setting {name!r}; {hint}known settings: {', '.join(names)} "
                "(`refvi settings` lists them, `refvi settings NAME` their names)",
            )
        options = []
        for opt in filter(None, (o.strip() for o in opts.split(","))):
            key, sep, val = opt.partition("=")
            if not sep:
                raise DerivationError(
                    path, line, f"setting option {opt!r} is not key=value"
                )
            options.append((key.strip(), val.strip()))
        try:
            limits.check_setting_options(name, options)
        except ValueError as err:
            raise DerivationError(path, line, str(err), _kind(err)) from None
        out.append(Setting(name, tuple(options), line))
    return tuple(out)


#: Upper bounds of the numeric front-matter options (``limits``).
_BOUNDS = {
    "tolerance": limits.MAX_TOLERANCE,
    "separation": limits.MAX_SEPARATION,
    "sigmas": limits.MAX_SIGMAS,
}


def _number(meta, key, default, path):
    """Front-matter option ``key`` within its limits, or ``default``."""
    if key not in meta:
        return default
    value, line = meta[key]
    try:
        if key == "seeds":
            return limits.check_seeds(value)
        return limits.check_number(key, value, _BOUNDS[key])
    except ValueError as err:
        raise DerivationError(path, line, str(err), _kind(err)) from None


def _kind(err):
    """The report's kind of an error raised by ``limits`` or ``evaluate``:
    ``limits``, ``unsupported`` (outside the check language) or ``malformed``."""
    if isinstance(err, limits.LimitError | evaluate.LimitExceeded):
        return LIMITS
    return UNSUPPORTED if isinstance(err, evaluate.Refused) else MALFORMED


def _compile_side(source, line, path):
    """Parse one check expression and check it stays in the check language
    (``refvi.checker.evaluate``); returns (tree, free names)."""
    try:
        return evaluate.compile_check(source)
    except SyntaxError as err:
        raise DerivationError(
            path, line, f"syntax error in check: {err.msg}: {source.strip()[:80]}"
        ) from None
    except evaluate.Refused as err:
        raise DerivationError(path, line, str(err), _kind(err)) from None


def _parse_check_block(body, start, path, tol):
    """Lines of a check block -> (sides, unchecked reason, tol)."""
    exprs = []  # [relation, source, line]
    unchecked = None
    for offset, raw in enumerate(body):
        line = start + offset
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        directive = _DIRECTIVE_RE.match(text)
        if directive:
            key, value = directive.groups()
            if key == "unchecked":
                if not value:
                    raise DerivationError(path, line, "unchecked: needs a reason")
                unchecked = value
            else:
                try:
                    tol = limits.check_number("tol", value, limits.MAX_TOLERANCE)
                except ValueError as err:
                    raise DerivationError(path, line, str(err), _kind(err)) from None
            continue
        if raw[:1] in (" ", "\t") and exprs:
            exprs[-1][1] += " " + text
            continue
        match = _RELATION_RE.match(text)
        relation, source = match.groups() if match else (None, text)
        if not source:
            raise DerivationError(
                path, line, f"relation {relation!r} has no expression"
            )
        exprs.append([relation, source, line])
    if unchecked is not None and exprs:
        raise DerivationError(
            path,
            start,
            "a check block is either unchecked or has expressions, not both",
        )
    if unchecked is None and not exprs:
        raise DerivationError(
            path,
            start,
            "empty check block (write an expression or 'unchecked: <reason>')",
        )
    for i, (relation, _, line) in enumerate(exprs):
        if i > 0 and relation is None:
            raise DerivationError(
                path,
                line,
                "a second expression in a check block needs a relation "
                "(=, <=, >=, <, >, !=)",
            )
    sides = tuple(
        Side(rel, src, line, *_compile_side(src, line, path))
        for rel, src, line in exprs
    )
    return sides, unchecked, tol


def parse(text, path="<derivation>", from_latex=False, latex_only=False):
    """Parse a derivation's text into a ``Derivation`` (raises DerivationError).

    With ``from_latex`` (as ``refvi verify`` reads files) a display without a check
    block is checked from its LaTeX alone (``refvi.checker.latex``); without it
    such a display is an error. ``latex_only`` ignores every check block.
    """
    lines = text.splitlines()
    meta, i, notes = _front_matter(lines, path)
    if "settings" not in meta:  # inferred from what the derivation uses
        value, why = latex_frontmatter.infer_settings("\n".join(lines[i:]))
        meta["settings"] = (value, 1)
        notes.append(f"no settings in the front matter: checked on {value} ({why})")
        for title in latex_frontmatter.aggregate_sections(lines):
            if f'section "{title}" settings' not in meta:
                notes.append(
                    f"section {title!r} defines q(z) as the aggregated posterior "
                    "int q(z|x) p(x) dx: checked on aggregated, p(x) = p_data(x)"
                )
    settings = _parse_settings(*meta["settings"], path)
    seeds = _number(meta, "seeds", DEFAULT_SEEDS, path)
    tolerance = _number(meta, "tolerance", DEFAULT_TOLERANCE, path)
    separation = _number(meta, "separation", DEFAULT_SEPARATION, path)
    sigmas = _number(meta, "sigmas", DEFAULT_SIGMAS, path)

    source = text  # `text` is reused below for each line
    checks = []
    pending = None  # (line, latex) of a display still waiting for its check
    displayed = 0
    from_latex = from_latex or latex_only

    def unblocked(display):
        """The check of a display without a check block."""
        if not from_latex:
            raise DerivationError(
                path,
                display[0],
                "displayed equation has no check block (follow it with "
                "```check ... ``` or a block holding 'unchecked: <reason>')",
            )
        return Check(display[0], display[1], (), None, tolerance, "latex")

    # Displays ($$, \[ \], bare environments) found once, by their first line;
    # the front matter is blanked so nothing in it reads as math.
    body = "\n" * i + "\n".join(lines[i:])
    spans = {}
    for span in display_spans(body):
        spans.setdefault(span.line, []).append(span)
    n = len(lines)
    while i < n:
        text = lines[i].strip()
        fence = re.match(r"^(`{3,})\s*(\w*)\s*$", text)
        if fence:
            ticks, info = fence.groups()
            end = next((j for j in range(i + 1, n) if lines[j].strip() == ticks), None)
            if end is None:
                raise DerivationError(
                    path, i + 1, f"code block opened here is not closed by {ticks}"
                )
            if info == "check" and latex_only and pending is not None:
                checks.append(unblocked(pending))
                pending = None
            elif info == "check":
                if pending is None:
                    raise DerivationError(
                        path,
                        i + 1,
                        "check block without a displayed equation before it",
                    )
                sides, unchecked, tol = _parse_check_block(
                    lines[i + 1 : end], i + 2, path, tolerance
                )
                checks.append(Check(pending[0], pending[1], sides, unchecked, tol))
                pending = None
            elif pending is not None:
                checks.append(unblocked(pending))
                pending = None
            i = end + 1
            continue
        if not text:
            i += 1
            continue
        if pending is not None:
            checks.append(unblocked(pending))
            pending = None
        for span in spans.get(i + 1, ()):
            if pending is not None:  # two displays on one line
                checks.append(unblocked(pending))
            pending = (span.line, span.source.strip())
            displayed += 1
            if displayed > limits.MAX_DISPLAYS:
                raise DerivationError(
                    path,
                    span.line,
                    f"more than {limits.MAX_DISPLAYS} displayed equations in one "
                    "file (the limit)",
                    LIMITS,
                )
            i = span.end - 1
        i += 1
    if pending is not None:
        checks.append(unblocked(pending))
    return Derivation(
        str(path), settings, seeds, tolerance, separation, sigmas, tuple(checks),
        source, notes=tuple(notes)
    )  # fmt: skip


def parse_file(path, latex_only=False, blocks_only=False):
    """Read and parse a derivation file as ``refvi verify`` does: a display
    without a check block is checked from its LaTeX, unless ``blocks_only``,
    which makes such a display an error (every line needs its check block)."""
    text = read.read_text(path)
    if blocks_only and latex_only:
        raise ValueError("blocks_only and latex_only exclude each other")
    if str(path).endswith(".ipynb"):  # its Markdown cells, in order
        try:
            text, cells = notebook.markdown_of(text)
        except notebook.NotebookError as err:
            raise DerivationError(path, 1, str(err)) from None
        try:
            parsed = parse(text, path, from_latex=not blocks_only,
                           latex_only=latex_only)  # fmt: skip
        except DerivationError as err:
            raise DerivationError(path, cells.where(err.line), err.message) from None
        return replace(parsed, cells=cells)
    return parse(text, path, from_latex=not blocks_only, latex_only=latex_only)


# ---------------------------------------------------------------------------
# "Compute the line as written": closed forms only where the LaTeX names them.


def latex_sides(latex):
    """Split a displayed equation at its top-level relations (=, \\le, \\ge, ...)."""
    parts, depth, start = [], 0, 0
    for match in re.finditer(r"[{}]|" + _LATEX_REL_RE.pattern, latex):
        token = match.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        elif depth == 0:
            parts.append(latex[start : match.start()])
            start = match.end()
    parts.append(latex[start:])
    return [p.strip() for p in parts]


def _check_closed_forms(check, instance, path):
    """A closed form may appear only in a side whose LaTeX names the quantity.

    A block that starts a chain computes the equation's left side with its
    first expression and the right-most sides with the others; a block that
    continues a chain computes the right-most sides.
    """
    parts = latex_sides(check.latex)
    if len(check.sides) > len(parts):
        raise DerivationError(
            path,
            check.sides[0].line,
            f"the check has {len(check.sides)} expressions but the equation has "
            f"only {len(parts)} side(s)",
        )
    m = len(check.sides)
    if check.sides[0].relation is None:  # first expression: the left side
        matched = [parts[0], *parts[len(parts) - m + 1 :]]
    else:  # a continued chain computes the right-most sides
        matched = parts[len(parts) - m :]
    for side, part in zip(check.sides, matched, strict=True):
        for name in sorted(side.names & set(instance.closed)):
            if not re.search(instance.closed[name], part):
                raise DerivationError(
                    path,
                    side.line,
                    f"{name!r} is a closed form, but the side it computes "
                    f"({part[:40]!r}) does not name it: compute the line as written",
                )


# ---------------------------------------------------------------------------
# Evaluation.


def _evaluate_side(side, instance, path, tol):
    """The ``Value`` of one side on ``instance``; operators with error control
    refine to a tenth of the line's tolerance ``tol``."""
    known = set(instance.names) | set(evaluate.BUILTINS) | set(evaluate.SHORTHANDS)
    unknown = side.names - known - {"np"}
    if unknown:
        raise DerivationError(
            path,
            side.line,
            f"unknown name {sorted(unknown)[0]!r} in setting {instance.setting!r}",
        )
    where = f"(setting {instance.setting}, seed {instance.seed})"
    try:
        with np.errstate(all="ignore"), refinement_target(tol / 10):
            value = evaluate.evaluate(side.code, instance.names)
    except DerivationError:
        raise
    except (evaluate.Refused, limits.LimitError) as err:
        raise DerivationError(path, side.line, f"{err} {where}", _kind(err)) from None
    except Exception as err:  # any error inside a user's check is reported
        raise DerivationError(
            path, side.line, f"{type(err).__name__} in check {where}: {err}"
        ) from err
    if isinstance(value, Estimate):  # NaN or inf: the judge says undetermined
        return Value(value.mean, 0.0, "monte carlo", value.se, value.n)
    route, error = "direct", 0.0
    if isinstance(value, Measured):
        route, error, value = "quadrature", value.error, value.value
    if isinstance(value, Fn) or callable(value):
        raise DerivationError(
            path,
            side.line,
            f"check evaluates to a function of z, not a number {where}: "
            "take E_q(...), integral(...) or evaluate it",
        )
    try:
        value = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DerivationError(
            path,
            side.line,
            f"check returned {type(value).__name__}, not a number {where}",
        ) from None
    return Value(value, error, route)  # NaN or inf: the judge says undetermined


def _instance_chains(derivation, instance):
    """Evaluate every side on ``instance``; returns the chains of nodes."""
    path = derivation.path
    chains = []
    for c, check in enumerate(derivation.checks):
        if check.unchecked is not None or check.method == "latex":
            chains.append(None)  # an unchecked or LaTeX-checked line breaks the chain
            continue
        first = check.sides[0]
        if first.relation is not None and (not chains or chains[-1] is None):
            raise DerivationError(
                path,
                first.line,
                f"relation {first.relation!r} continues a chain, but the displayed "
                "line before it is missing or unchecked",
            )
        _check_closed_forms(check, instance, path)
        if first.relation is None:
            chains.append([])
        for side in check.sides:
            value = _evaluate_side(side, instance, path, check.tol)
            chain = chains[-1]
            if chain:
                prev = chain[-1][2]
                estimate = prev.is_estimate or value.is_estimate
                if estimate != (side.relation == "~"):
                    raise DerivationError(
                        path,
                        side.line,
                        "'~' compares a Monte Carlo estimate (MC_q(...)) with a value, "
                        "and an estimate is compared only by '~'",
                    )
                if estimate:
                    chain.append(Node(c, side.relation, value, check.tol))
                    continue
                shapes = np.shape(prev.value), np.shape(value.value)
                if shapes[0] != shapes[1] and all(shapes):
                    raise DerivationError(
                        path,
                        side.line,
                        f"the sides of {side.relation!r} have shapes {shapes[0]} "
                        f"and {shapes[1]} (setting {instance.setting}, "
                        f"seed {instance.seed})",
                    )
            chain.append(Node(c, side.relation, value, check.tol))
    return [chain for chain in chains if chain]


def verify(derivation, seeds=None):
    """Evaluate every check of a parsed derivation on every instance and judge it.

    Parameters
    ----------
    derivation : Derivation
    seeds : int, optional
        Instances per setting (seeds 0 .. seeds-1); default the file's ``seeds``.

    Returns
    -------
    FileResult
        One ``LineResult`` per displayed line: the judge's (``refvi.checker.judge``)
        worst comparison over all instances; a line fails when it is blamed
        on any instance.
    """
    path = derivation.path
    n_seeds = derivation.seeds if seeds is None else seeds
    result = FileResult(path, [s.label() for s in derivation.settings], n_seeds)
    result.cells = derivation.cells
    result.notes = list(derivation.notes)
    block_settings = [
        s for s in derivation.settings if s.name not in LATEX_ONLY_SETTINGS
    ]
    if all(c.method == "latex" for c in derivation.checks):
        block_settings = []

    def instances():
        for setting in block_settings:
            for seed in range(n_seeds):
                try:
                    instance = make_instance(setting.name, setting.options, seed)
                except (TypeError, ValueError) as err:
                    raise DerivationError(
                        path, setting.line, f"setting {setting.label()}: {err}",
                        _kind(err)
                    ) from None  # fmt: skip
                yield f"{setting.name}/{seed}", instance

    def chains_of(instance, refine):  # the sides refine themselves
        return None if refine else _instance_chains(derivation, instance)

    tallies = judge_instances(
        chains_of, instances(), derivation.separation, derivation.sigmas
    )
    worst = [{} for _ in derivation.checks]  # per check: relation -> Comparison
    for (c, relation), tally in tallies.items():
        worst[c][relation] = tally.comparison
    by_display = {}
    latex_lines = sorted(c.line for c in derivation.checks if c.method == "latex")
    if latex_lines:
        try:
            latex = check_latex_text(
                derivation.source,
                path,
                seeds=n_seeds,
                tol=derivation.tolerance,
                separation=derivation.separation,
                only_lines=set(latex_lines),
                sigmas=derivation.sigmas,
            )
        except MalformedLatex as err:
            raise DerivationError(path, err.line, str(err)) from None
        result.warnings, result.errors = latex.warnings, latex.errors
        for r in latex.lines:  # under the display it is in
            display = max(s for s in latex_lines if s <= r.line)
            by_display.setdefault(display, []).append(r)
    for check, verdict in zip(derivation.checks, worst, strict=True):
        if check.method == "latex":
            result.lines.extend(by_display.get(check.line, []))
            continue
        relations = [s.relation for s in check.sides if s.relation]
        label = " ".join(relations) or "expr"
        if check.unchecked is not None or not verdict:
            reason = check.unchecked or "a definition: nothing to compare"
            result.lines.append(
                LineResult(check.line, check.latex, label, UNCHECKED, reason=reason)
            )
            continue
        result.lines.append(_line_result(check, label, verdict))
    return result


def _line_result(check, label, verdict):
    """The ``LineResult`` of a block-checked line from its worst comparison per
    relation: the worst verdict is shown (a failing relation first, then an
    undetermined one, then an equality, then the first)."""
    relation, shown = min(
        verdict.items(), key=lambda kv: (-RANK[kv[1].verdict], kv[0] != "=")
    )
    routes = sorted({c.route for c in verdict.values()})
    return LineResult.judged(
        check.line, check.latex, label, shown, route=", ".join(routes)
    )


def verify_file(path, seeds=None, latex_only=False, blocks_only=False):
    """Parse and verify one file; DerivationError on malformed input.

    ``latex_only``: ignore the check blocks, check every line from its LaTeX.
    ``blocks_only``: a display without a check block is an error.
    """
    return verify(parse_file(path, latex_only, blocks_only), seeds=seeds)
