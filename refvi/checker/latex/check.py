"""Check a Markdown derivation from its LaTeX alone: ``check_latex_file``.

Every display equation is split into chains, every chain read in every way
its LaTeX allows (``parser.readings``), every relation evaluated on several
random instances of each declared setting under each declared assumption
(``frontmatter``), and judged by ``refvi.checker.judge``, the judge of the
check blocks: each side is a value with an error estimate (the difference
between the quadrature at two step sizes), a relation holds, fails or is
undetermined (the error is too large to decide, or a side overflows), and
each side of a chain is compared with the last side that held, so a wrong
row does not make the next row fail. Densities are compared by their logs.
``:=`` is recorded as a definition, a display without a relation as an
expression; neither is checked.

A construct outside the vocabulary makes its line ``unsupported`` (with the
token and the reason); the rest of the file is still checked. A failing ``=``
is compared with a library of candidate expressions (``hints.py``).
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from refvi.checker.instances import DEFAULT_SEEDS
from refvi.checker.judge import (
    DEFAULT_SEPARATION,
    DEFAULT_SIGMAS,
    DEFAULT_TOLERANCE,
    FAILS,
    HOLDS,
    Node,
    Value,
    judge_instances,
)
from refvi.checker.latex import definitions, frontmatter, ir, prose, rebind, upstream
from refvi.checker.latex.evaluate import (
    CHOICES,
    SAMPLE_COUNTS,
    EvaluationError,
    Evaluator,
    real,
)
from refvi.checker.latex.hints import match_hint
from refvi.checker.latex.matrix import Eye, Mat
from refvi.checker.latex.models import Instantiated, make_model, matrix_symbols
from refvi.checker.latex.parser import (
    RELATIONS,
    UP_TO_CONSTANT,
    Parser,
    nodes,
    readings,
    split_equations,
)
from refvi.checker.latex.tokens import MalformedLatex, displays
from refvi.checker.read import read_text
from refvi.checker.report import format_file
from refvi.checker.results import UNCHECKED, UNSUPPORTED, FileResult, LineResult

#: Why a definition or an expression is not checked (``LineResult.reason``).
DEFINITION = "a definition (:=), recorded, not checked"
EXPRESSION = "an expression without a relation"
DEFINES_DENSITY = (
    "a definition (:=) of {density}, recorded, not checked; the rest of its "
    "section reads {density} as defined here"
)


class _Judged(NamedTuple):
    """A relation of a chain judged on the instances of one assumption: the
    judge's ``Tally``, the setting left out (and why), and the left and right
    sides' values per instance (what a hint is matched against)."""

    tally: object
    skipped: str | None
    lefts: list
    values: list


def _headings(lines):
    """The heading in force at each line: the index of its line (-1 before
    the first) and its title ("" before the first)."""
    out, current = [], (-1, "")
    for i, text in enumerate(lines):
        if text.startswith("#"):
            current = (i, text.lstrip("#").strip())
        out.append(current)
    return out


def _defined_densities(seqs, scope):
    """The densities the chains ``seqs`` of a display define
    (``rebind.py``): read from each chain with a definition; a chain that
    cannot be read leaves the density it defines without a value."""
    out = []
    for seq in seqs or ():
        at = next((i for i, t in enumerate(seq) if t.text in ir.DEFINITION_OPS), None)
        if at is None:
            continue
        try:
            eq = _read(seq, scope)[0]
        except (ir.Unsupported, RecursionError) as err:
            side = seq[:at] if seq[at].text == ":=" else seq[at + 1 :]
            try:
                target = _read(side, scope)[0].exprs[0]
            except (ir.Unsupported, RecursionError):
                continue
            if isinstance(target, ir.Density) and target.vars is not None:
                entry = rebind.unreadable(target, seq[at].line, err, scope)
                out += [entry] if entry is not None else []
            continue
        try:
            out += rebind.definitions(eq, scope)
        except ir.Unsupported:
            continue
    return out


def _reading_label(eq):
    if not eq.sites:
        return "the only reading"
    parts = []
    for (_, whole, first), choice in zip(eq.sites, eq.reading, strict=True):
        parts.append(whole if choice == "rest" else first)
    return "; ".join(parts)


def _is_density(node, scope):
    return ir.infer(node, scope.latent, scope.observed).kind == "density"


#: The judge's name of each LaTeX relation; ``:=`` and ``=:`` are definitions.
JUDGE_OP = {"=": "=", "\\neq": "!=", "\\le": "<=", "\\ge": ">=", "<": "<", ">": ">",
            "\\approx": "~"}  # fmt: skip


def _side(pairs, density, estimate=None):
    """A ``judge.Value`` from the signed-log values at levels 0 and 1: the
    level-0 value, the difference of the levels as its error estimate; a
    density also as its log (``Value.log``: densities are compared by their
    logs); a Monte Carlo average with its standard error and draws
    (``estimate``)."""
    (v, w) = pairs
    if estimate is not None:
        with np.errstate(invalid="ignore"):
            error = np.abs(real(v) - real(w))
        se, n = estimate
        return Value(real(v), error, "monte carlo", se=se, n=n)

    def value(a, b):
        with np.errstate(invalid="ignore"):
            error = np.abs(a - b)
        error = np.where(np.isfinite(a) & np.isfinite(b), error, np.inf)
        route = "quadrature" if np.any(error > 0) else "direct"
        return Value(a, error, route)

    with np.errstate(over="ignore"):  # an overflow is judged undetermined
        out = value(real(v), real(w))
    if density and np.all(v[1] > 0) and np.all(w[1] > 0):
        return Value(out.value, out.error, out.route, log=value(v[0], w[0]))
    return out


class _Sides:
    """The sides of the chains of a scope as computations on every instance:
    each side's ``judge.Value`` per instance, judged by
    ``judge.judge_instances`` (the judge of the check blocks)."""

    def __init__(self, scope, seeds, tol, separation, sigmas=DEFAULT_SIGMAS):
        self.scope, self.seeds, self.tol = scope, seeds, tol
        self.separation, self.sigmas = separation, sigmas
        self.cache = {}
        self.estimates = {}  # (node, model label) -> (se, draws) of an MC side
        self.chains = {}

    def value(self, node, model, level, free_z, components=()):
        """The signed-log value of ``node`` on ``model`` (memoised per display)."""
        key = (node, model.label, level, free_z, components)
        if key not in self.cache:
            sc = self.scope
            ev = Evaluator(model, sc.shorthands, level, sc.latent, sc.observed)
            self.cache[key] = ev.value(node, free_z, components)
            if ev.estimate is not None:
                self.estimates[node, model.label] = ev.estimate
        return self.cache[key]

    def models(self, variant):
        """The instances of every setting the LaTeX checker has a model for
        (a setting without one, e.g. ``gaussian``, is left out while another
        remains)."""
        out, missing = [], None
        for setting, options in self.scope.settings:
            try:
                out += [
                    make_model(setting, seed, options, variant)
                    for seed in range(self.seeds)
                ]
            except ir.Unsupported as err:
                missing = err
        if not out:
            raise missing
        return out

    def verdict(self, eq, k, variant):
        """The ``_Judged`` relation ``k`` of the chain ``eq`` (raises the
        ``Unsupported``/``EvaluationError`` that kept it from being judged)."""
        key = (eq, variant)
        if key not in self.chains:
            self.chains[key] = self._chain(eq, variant)
        out = self.chains[key][k]
        if isinstance(out, Exception):
            raise out
        return out

    def _chain(self, eq, variant):
        """Judge every relation of ``eq`` on every instance: each side is
        compared with the last side that held (``judge.judge_chain``), so a
        wrong row does not make the next, correct row fail."""
        sc = self.scope
        exprs = eq.exprs
        try:
            free_z = any(
                sc.latent in ir.infer(e, sc.latent, sc.observed).free for e in exprs
            )
            components = tuple(sorted(set().union(*map(ir.free_components, exprs))))
            models = self.models(variant)
        except ir.Unsupported as err:
            return [err] * len(eq.relations)
        used = {type(n) for e in exprs for n in nodes(e)}
        if ir.Func in used:
            models = [Instantiated(m, choice=i) for m in models for i in range(CHOICES)]
        if ir.SampleCount in used:
            models = [Instantiated(m, count=c) for m in models for c in SAMPLE_COUNTS]
        dens = [_is_density(e, sc) for e in exprs]
        errors = [None] * len(eq.relations)  # why a relation is not judged
        skipped = []  # (setting, Unsupported) of a model left out
        lefts = [{} for _ in eq.relations]  # model label -> (model, left value)
        rights = [{} for _ in eq.relations]

        def chains_of(model, refine):
            levels = REFINED if refine else (0, 1)
            try:
                pairs = self._pairs(exprs, model, free_z, levels, components)
            except ir.Unsupported as err:  # a density this setting lacks
                if refine:
                    return None
                skipped.append((model.label.split("/")[0], err))
                return []
            if refine and any(isinstance(p, Exception) for p in pairs):
                return None
            self._errors(eq, pairs, model, errors)
            for k, error in enumerate(errors):
                if error is None:  # the values a hint is matched against
                    lefts[k][model.label] = (model, pairs[k][0])
                    rights[k][model.label] = (model, pairs[k + 1][0])
            return self._nodes(eq, pairs, dens, model, free_z, errors)

        instances = [(m.label, m) for m in models]
        tallies = judge_instances(chains_of, instances, self.separation, self.sigmas)
        result = []
        for k, r in enumerate(eq.relations):
            tally = tallies.get((k, JUDGE_OP.get(r.op, "=")))  # \\propto: by its "="
            if tally is None:
                result.append(errors[k] or (skipped or [(None, _NOT_JUDGED)])[-1][1])
                continue
            skip = f"not on {skipped[-1][0]}: {skipped[-1][1]}" if skipped else None
            judged = _Judged(tally, skip, [*lefts[k].values()], [*rights[k].values()])
            result.append(judged)
        return result

    def _errors(self, eq, pairs, model, errors):
        """Mark the relations of ``eq`` that cannot be judged on ``model``: a
        side that could not be evaluated, or a Monte Carlo side not compared
        by ``\\approx`` (or ``\\approx`` between exact values)."""
        for k, r in enumerate(eq.relations):
            for j in (k, k + 1):
                if isinstance(pairs[j], Exception):
                    errors[k] = pairs[j]
            mc = [(e, model.label) in self.estimates for e in eq.exprs[k : k + 2]]
            if (r.op == "\\approx") != any(mc) and errors[k] is None:
                errors[k] = _MC_ONLY_APPROX if any(mc) else _APPROX_ONLY_MC

    def _nodes(self, eq, pairs, dens, model, free_z, errors):
        """The chains of ``judge.Node`` of ``eq`` on one model, from the sides'
        values ``pairs``: each run of judged relations, then each
        ``\\propto`` as its ``=`` (``_proportional``)."""
        out = []
        for segment in _segments(eq, pairs, errors):
            if any(isinstance(pairs[j][0], Mat) for _, _, j in segment):
                out.append(self._matrix_nodes(segment, pairs))
                continue
            out.append([
                Node(k, JUDGE_OP.get(op), self._side(eq.exprs[j], pairs[j], dens[j],
                                                     model), self.tol)
                for k, op, j in segment
            ])  # fmt: skip
        out += self._up_to_constant(eq, pairs, free_z, errors)
        return out + self._proportional(eq, pairs, free_z, errors)

    def _up_to_constant(self, eq, pairs, free_z, errors):
        """The chain of each ``a = b + \\text{const}``: a - b is one constant
        over the points of the free latent z (at each datum and component),
        compared by ``=`` with its mean over those points."""
        out = []
        for k, r in enumerate(eq.relations):
            if r.op != UP_TO_CONSTANT or errors[k] is not None:
                continue
            matrices = any(isinstance(v, Mat) for p in pairs[k : k + 2] for v in p)
            if not free_z or matrices:
                errors[k] = _CONSTANT_FORM
                continue
            (a0, a1), (b0, b1) = pairs[k], pairs[k + 1]
            out.append(self._constant(k, real(a0) - real(b0), real(a1) - real(b1)))
        return out

    def _constant(self, k, d0, d1):
        """The chain of relation ``k`` whose difference of sides, ``d0`` (and
        ``d1`` at the coarser level: the error estimate), is one constant over
        the points of z: compared by ``=`` with its mean over those points."""
        with np.errstate(invalid="ignore"):
            err = np.where(np.isfinite(d0) & np.isfinite(d1), np.abs(d0 - d1), np.inf)
        const = Value(np.mean(d0, axis=-1, keepdims=True), np.max(err))
        return [Node(k, None, Value(d0, err), self.tol), Node(k, "=", const, self.tol)]

    def _matrix_nodes(self, segment, pairs):
        """The chain of a run whose sides are matrices, compared normwise:
        each side divided by s = max(1, the largest Frobenius norm of the
        run's sides) at each point, then entry by entry (so the deviation is
        the largest entry of |A - B| / s); a number side (``= 0``) stands for
        a matrix of that number. Sides of different sizes fail (the judge
        compares only sides of one shape)."""
        sides = [pairs[j] for _, _, j in segment]
        shapes = [v.shape if isinstance(v, Mat) else None for v, _ in sides]
        if all(sh is None for sh in shapes):
            raise ir.Unsupported("I without its size on every side: write I_k")
        size = next(sh for sh in shapes if sh is not None)[0]
        arrays = [
            tuple(p.expand(size).a if isinstance(p, Eye) else p.a if isinstance(p, Mat)
                  else real(p)[..., None, None] for p in pair)
            for pair in sides
        ]  # fmt: skip
        norms = [np.sqrt(np.sum(a**2, axis=(-2, -1))) for a, _ in arrays]
        s = np.maximum(1.0, np.max(np.broadcast_arrays(*norms), axis=0))
        s = s[..., None, None]
        nodes = []
        for (k, op, _), (a, b) in zip(segment, arrays, strict=True):
            with np.errstate(invalid="ignore"):
                err = np.where(np.isfinite(a) & np.isfinite(b), np.abs(a - b), np.inf)
            value = Value(np.broadcast_to(a / s, np.broadcast_shapes(a.shape, s.shape)),
                          err / s, "direct")  # fmt: skip
            nodes.append(Node(k, JUDGE_OP.get(op), value, self.tol))
        return nodes

    def _proportional(self, eq, pairs, free_z, errors):
        """The chain of each ``a \\propto b`` of ``eq``: in the latent z,
        log a - log b is one constant over the points of z (at each datum):
        it is compared by ``=`` with its mean over those points."""
        out = []
        for k, r in enumerate(eq.relations):
            if r.op != "\\propto" or errors[k] is not None:
                continue
            if len(eq.relations) > 1 or not free_z:
                errors[k] = _PROPTO_FORM
                continue
            (a0, a1), (b0, b1) = pairs[k], pairs[k + 1]
            if not all(np.all(v[1] > 0) for v in (a0, a1, b0, b1)):
                errors[k] = _PROPTO_FORM
                continue
            out.append(self._constant(k, a0[0] - b0[0], a1[0] - b1[0]))
        return out

    def _side(self, expr, pairs, density, model):
        return _side(pairs, density, self.estimates.get((expr, model.label)))

    def _pairs(self, exprs, model, free_z, levels=(0, 1), components=()):
        """Each side's signed-log values at two quadrature levels (the first
        is the value, their difference its error estimate), or the
        ``EvaluationError`` that stopped it; raises ``ir.Unsupported``."""
        out = []
        for e in exprs:
            try:
                out.append(
                    tuple(self.value(e, model, lv, free_z, components) for lv in levels)
                )
            except EvaluationError as err:
                out.append(err)
        return out


_NOT_JUDGED = ir.Unsupported("not a relation the judge compares")
_CONSTANT_FORM = ir.Unsupported(
    "'= ... + const' is checked between numbers that depend on the latent z "
    "(log p(z|x) = log p(x|z) + log p(z) + const)"
)
_PROPTO_FORM = ir.Unsupported(
    "\\propto is checked alone in its chain, between positive functions of the "
    "latent z (p(z|x) \\propto p(x|z) p(z))"
)
#: The quadrature levels of a line the first levels left undecided.
REFINED = (2, 3)


_MC_ONLY_APPROX = ir.Unsupported(
    "a Monte Carlo average equals its expectation only within standard errors: "
    "write \\approx"
)
_APPROX_ONLY_MC = ir.Unsupported(
    "\\approx is checked between a Monte Carlo average "
    "(\\frac{1}{L}\\sum_{l=1}^{L} f(z^{(l)})) and a value, not between two "
    "exact values"
)


def _segments(eq, pairs, errors):
    """Runs of consecutive sides joined by judged relations and all evaluated:
    lists of (relation index, op, side index); the first entry of a run is
    its first side (relation index of the link after it, op None)."""
    runs, run = [], []
    for k, r in enumerate(eq.relations):
        ok = (
            r.op in JUDGE_OP
            and errors[k] is None
            and not any(isinstance(p, Exception) for p in pairs[k : k + 2])
        )
        if not ok:
            if len(run) > 1:
                runs.append(run)
            run = []
            continue
        if not run:
            run = [(k, None, k)]
        run.append((k, r.op, k + 1))
    if len(run) > 1:
        runs.append(run)
    return runs


def _summarise(labels, judged):
    """'mixture_prior (3/3 instances)' from the labels 'setting/seed...' of
    the failing instances and of every judged one."""
    counts, totals = {}, {}
    for label in judged:
        name = label.split("/")[0]
        totals[name] = totals.get(name, 0) + 1
    for label in labels:
        name = label.split("/")[0]
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{k} ({c}/{totals[k]} instances)" for k, c in counts.items())


def _sides(v):
    """'; on <instance> at datum i: left a, right b' for the first failing
    instance, at the point where the two sides differ most (a test point of
    the free variable in the settings of two densities, which hold no data)."""
    first = v.tally.failing[0]
    for (model, left), (_, right) in zip(v.lefts, v.values, strict=True):
        if model.label != first:
            continue
        if not (isinstance(left, tuple) and isinstance(right, tuple)):
            return f"; on {first}"  # matrices: their entries are not shown
        with np.errstate(over="ignore", invalid="ignore"):
            a, b = np.broadcast_arrays(real(left), real(right))
            gap = np.where(np.isfinite(a - b), np.abs(a - b), -1.0)
        at = np.unravel_index(np.argmax(gap), gap.shape) if gap.ndim else ()
        if getattr(model, "pair", False):  # the axis of the test points
            axes = [k for k, n in enumerate(gap.shape) if n == len(model.x) > 1]
            where = f" at test point {at[axes[0]] + 1}" if at and axes else ""
        else:
            where = f" at datum {at[0] + 1}" if at and gap.shape[0] > 1 else ""
        return f"; on {first}{where}: left {a[at]:.6g}, right {b[at]:.6g}"
    return ""


def _hint(v, r, scope):
    """What a failing ``=`` computes, from the hint library, or None: a hint
    never replaces the verdict, so a side the library cannot read gives none."""
    if not v.values:
        return None  # no instance to match a candidate against
    if any(isinstance(val, Mat) for _, val in v.values + v.lefts):
        return None  # the hint library reads numbers, not matrices
    try:
        return match_hint(v, r, scope)
    except (ir.Unsupported, EvaluationError, ValueError, TypeError):
        return None


def _line(line, latex, op, verdict, **kwargs):
    """A ``results.LineResult`` of the LaTeX front end."""
    relation = OP_TEXT.get(op, op or "-")
    return LineResult(line, latex, relation, verdict, method="latex", **kwargs)


def _check_relation(rel, eqs, k, scope, sides, latex):
    """LineResult of relation ``k`` of a chain read as ``eqs`` (first preferred)."""
    if rel.op in ir.DEFINITION_OPS:
        found = rebind.defined(rel)
        reason = DEFINITION
        if found is not None and rebind.is_rebound(found[0], scope):
            reason = DEFINES_DENSITY.format(density=ir.describe(found[0]))
        return _line(rel.line, latex, rel.op, UNCHECKED, reason=reason,
                     kind="definition")  # fmt: skip
    primary, readings, assumptions = None, [], []
    for eq in eqs:
        per_assumption = []
        for name, variant in scope.assume:
            try:
                v = sides.verdict(eq, k, variant)
            except (ir.Unsupported, EvaluationError) as err:
                if eq is eqs[0] and not per_assumption:
                    return _line(rel.line, latex, rel.op, UNSUPPORTED, reason=str(err))
                per_assumption.append((name, UNSUPPORTED, None))
                continue
            c = v.tally.comparison
            per_assumption.append((name, c.verdict, c.deviation))
            if eq is eqs[0] and primary is None:
                primary = (eq.relations[k], v)
        if len(eqs) > 1:
            readings.append((_reading_label(eq), *per_assumption[0][1:]))
        if eq is eqs[0] and len(scope.assume) > 1:
            assumptions = per_assumption
    r, v = primary
    c = v.tally.comparison
    failing = None
    if v.tally.failing:
        failing = _summarise(v.tally.failing, [m.label for m, _ in v.values])
        failing += _sides(v)
        if scope.added and all(f.split("/")[0] == scope.added for f in v.tally.failing):
            failing += (
                f"; {scope.added} is the non-Gaussian setting added to the "
                "declared ones ('pinned: true' leaves it out)"
            )
    hint = _hint(v, r, scope) if c.verdict == FAILS and r.op == "=" else None
    return LineResult.judged(
        rel.line, latex, OP_TEXT.get(rel.op, rel.op), c, method="latex", hint=hint,
        failing=failing, skipped=v.skipped, readings=tuple(readings),
        assumptions=tuple(assumptions),
    )  # fmt: skip


def _explain(eq, scope):
    out = [f"reading: {_reading_label(eq)}"]
    for e in eq.exprs:
        try:
            t = str(ir.infer(e, scope.latent, scope.observed))
        except ir.Unsupported as err:
            t = f"ill-typed: {err}"
        out.append(f"  {ir.describe(e)}    : {t}")
    return out


def check_latex_text(text, path="<derivation>", seeds=DEFAULT_SEEDS,
                     tol=DEFAULT_TOLERANCE, separation=DEFAULT_SEPARATION,
                     only_lines=None,
                     sigmas=DEFAULT_SIGMAS):  # fmt: skip
    """Check every display of a derivation's text from its LaTeX.

    ``only_lines``: if given, the file lines of the ``$$`` of the displays to
    check (the others have check blocks). Returns a ``results.FileResult``:
    one ``LineResult`` per relation (or per line that is unsupported, a
    definition or an expression); a display that cannot be read is an error
    of the file (``errors``: (line, message)), for that display only, and the
    rest of the file is still checked.
    """
    lines = text.splitlines()
    top, scoped, body_start = frontmatter.read(lines, path)
    headings = _headings(lines)  # (line index, title) per line
    settings = [name for name, _ in top.settings]
    result = FileResult(str(path), settings, seeds)
    body = "\n".join(lines[body_start:])
    tail = None  # the last side of the previous display, a chain may go on
    heading, rebound = None, []  # densities defined in the current section
    defined = {}  # symbols defined so far (``definitions``)
    # the prose's definitions and upstream weights, in the order written (a
    # weight first: it is in scope from its paragraph's start)
    # and the quantities it differentiates by name (``upstream.Referent``)
    said = sorted(
        [(d.line, 0, d) for d in upstream.declarations(body, body_start + 1)]
        + [(m.line, 1, m) for m in prose.prose_definitions(body, body_start + 1)]
        + [(ln, 2, t) for ln, t in upstream.named_derivatives(body, body_start + 1)]
        + [(d.at, 3, d) for d in upstream.declarations(body, body_start + 1)],
        key=lambda e: e[:2],
    )
    referent = upstream.Referent()
    for disp in displays(body, first_line=body_start + 1):
        while said and said[0][0] < disp.line:
            line, kind, math = said.pop(0)
            if kind == 0:
                result.notes.append(upstream.record(math, defined))
                continue
            if kind == 3:  # where the weight is written, for the referent
                referent.declared(math)
                continue
            if kind == 2:
                referent.named(_quantity(math, scoped.get(headings[line - 1][1], top),
                                         defined), line)  # fmt: skip
                continue
            at, title = headings[math.line - 1]
            ours = scoped.get(title, top)
            if at == heading:
                ours = rebind.with_rebound(ours, rebound)
            _prose_definition(math, ours, defined, result)
        seqs, tail = _continued(disp, tail)
        at, section = headings[disp.line - 1]
        if at != heading:
            heading, rebound = at, []
        scope = scoped.get(section, top)
        rebound += _defined_densities(seqs, rebind.with_rebound(scope, rebound))
        scope = rebind.with_rebound(scope, rebound)
        made = _definitions(seqs, scope, defined)
        referent.record(defined)
        if only_lines is not None and disp.line not in only_lines:
            if upstream.names_quantity([t for row in disp.rows for t in row]):
                referent.named(None, disp.line)  # not read: the quantity is unknown
            continue
        sides = _Sides(scope, seeds, tol, separation, sigmas)
        latex = " ".join(disp.source.split())
        try:
            if disp.error is not None:
                raise MalformedLatex(disp.error, disp.error_line)
            seqs = seqs or split_equations(disp)
        except MalformedLatex as err:  # this display only; the others go on
            result.errors.append((err.line or disp.line, str(err)))
            continue
        for seq in seqs:
            line = max(seq[0].line, disp.line)  # a continued chain: this display
            first = 0  # the first relation to check (1 after a definition)
            if id(seq) in made:
                res, more = _definition_line(made[id(seq)], seq, latex)
                if res is not None:
                    result.lines.append(res)
                    if not more:
                        continue
                    first = 1
            rest = None  # the row of an approximation that cannot be read
            try:
                eqs = _read(seq, scope, defined)
                named = upstream.differentiated(eqs[0].exprs)
                if named is not None:
                    referent.named(named, line)
                    referent.record(defined)
            except RecursionError:
                raise MalformedLatex("the display nests too deeply", line) from None
            except ir.Unsupported as err:
                if upstream.names_quantity(seq):
                    referent.named(None, line)  # not read: the quantity is unknown
                    referent.record(defined)
                shown = str(err.token) if err.token is not None else ""
                tok = f" (token '{shown}')" if shown and shown not in str(err) else ""
                at = max(err.line or line, line)
                cut = _approximation_cut(seq, err, first)
                eqs = None
                if cut is not None:
                    try:
                        eqs = _read(seq[:cut], scope, defined)
                    except ir.Unsupported:
                        eqs = None
                if eqs is None:
                    result.lines.append(
                        _line(at, latex, "", UNSUPPORTED, reason=f"{err}{tok}")
                    )
                    continue
                reason = f"{APPROXIMATION_UNREAD}: {err}{tok}"
                rest = _line(seq[cut].line, latex, seq[cut].text, UNSUPPORTED,
                             reason=reason)  # fmt: skip
            explain = _explain(eqs[0], scope)
            if len(eqs) > 1 and eqs[0].sites[-1][0] >= disp.line:
                result.warnings.append(
                    f"{path}:{eqs[0].sites[0][0]}: ambiguous: "
                    + " | ".join(_reading_label(e) for e in eqs)
                    + " (the first reading decides)"
                )
                for e in eqs[1:]:
                    explain += _explain(e, scope)
            if not eqs[0].relations:
                result.lines.append(
                    _line(
                        line,
                        latex,
                        "",
                        UNCHECKED,
                        reason=EXPRESSION,
                        kind="expression",
                        explain=tuple(explain),
                    )  # fmt: skip
                )
                continue
            for k, rel in enumerate(eqs[0].relations):
                if rel.line < disp.line or k < first:  # reported elsewhere
                    continue
                try:
                    res = _check_relation(rel, eqs, k, scope, sides, latex)
                except Exception as err:  # never a crash: the line is unchecked
                    reason = f"cannot evaluate: {type(err).__name__}: {err}"
                    res = _line(rel.line, latex, rel.op, UNSUPPORTED, reason=reason)
                res.explain = tuple(explain) if k == 0 else ()
                result.lines.append(res)
            if rest is not None:
                result.lines.append(rest)
    return result


#: Why the approximation ending a chain is not checked.
APPROXIMATION_UNREAD = (
    "the approximation and what follows it cannot be read (the exact "
    "relations before it are checked)"
)


def _approximation_cut(seq, err, first):
    """The position of the ``\\approx`` at which the chain ``seq`` is cut when
    ``err`` stopped its reading after it, and an exact relation to check
    (from relation ``first`` on) comes before it; else None. So
    ``E_q[f] = E_xi[f(m + L xi)] \\approx \\sum_i w_i f(...)`` with a
    quadrature rule given in words checks its ``=`` and reports the rest
    unsupported."""
    at = next((k for k, t in enumerate(seq) if t is err.token), None)
    if at is None:
        return None
    rels = [k for k, t in enumerate(seq) if t.text in RELATIONS and k < at]
    if len(rels) < 2 + first or seq[rels[-1]].text != "\\approx":
        return None
    cut = rels[-1]
    if any(seq[k].text == "\\approx" for k in rels[:-1]):
        return None  # only exact relations before the cut
    return cut


def _read(seq, scope, defined=None):
    """Every reading of a chain (``parser.readings``), type-checked; a chain
    that cannot be read so is read again in matrix notation with the symbols
    the scope's settings bind (``models.matrix_symbols``) and those the file
    defined (``defined``, see ``definitions``). The error reported is the
    first reading's, or the matrix reading's when the first stopped at a
    symbol or construct of matrix notation. In the ``gaussian`` setting
    alone, whose bare \\mu, \\sigma are p's in matrix notation (it has no
    q(z|x)), a first reading that takes them as q's is read again so."""
    variables = (scope.latent, scope.observed)
    defined = defined or {}

    def read(matrices):
        eqs = readings(seq, variables, scope.latent, scope.reading, matrices,
                       defined)  # fmt: skip
        for eq in eqs:
            for e in eq.exprs:
                ir.infer(e, scope.latent, scope.observed)
        return eqs

    symbols = matrix_symbols(scope.settings)
    if any(s.endswith("()") for s in symbols):  # densities besides p, q: f, g
        return read(symbols)
    try:
        eqs = read(None)
    except ir.Unsupported as first:
        if not symbols and not defined:
            raise
        try:
            return read(symbols)
        except ir.Unsupported as err:
            tok = getattr(first.token, "text", None)
            named = any(k in symbols or k in defined for k in (tok, f"{tok}[]"))
            if named or tok in _MATRIX_TOKENS or "subscript" in str(first):
                raise err from None
            raise first from None
    if _pair_only(scope) and any(_q_parameter(n) for e in eqs[0].exprs
                                 for n in nodes(e)):  # fmt: skip
        try:
            return read(symbols)
        except ir.Unsupported:
            return eqs
    return eqs


def _quantity(tokens, scope, defined):
    """The quantity ``tokens`` (the X of a ``\\partial X / \\partial P`` in
    the prose) read in matrix notation, or None if it cannot be read."""
    symbols = matrix_symbols(scope.settings)
    try:
        p = Parser(tokens, (scope.latent, scope.observed), scope.latent, (),
                   symbols, defined)  # fmt: skip
        node = p.expr()
        return node if p.peek() is None else None
    except ir.Unsupported:
        return None


def _pair_only(scope):
    return all(name.split("(")[0] == "gaussian" for name, _ in scope.settings)


def _q_parameter(node):
    """A bare \\mu, \\sigma of q (or a derivative in one)."""
    if isinstance(node, ir.Param):
        return node.index is None
    return isinstance(node, ir.Grad) and node.group in ("mu", "sigma")


def _definitions(seqs, scope, defined, reserved=definitions.RESERVED, again=False):
    """Record the definitions the chains ``seqs`` of one display make (all of
    them before any chain of the display is read: a trailing "where M = ..."
    defines what the display's first chain uses) in ``defined``; returns
    {id(chain): (key, definition or None, op, own)}."""
    made = {}
    if not seqs:
        return made
    symbols = matrix_symbols(scope.settings)
    variables = (scope.latent, scope.observed)
    for seq in seqs:
        found = definitions.target(seq, variables, scope.latent, symbols, defined,
                                   reserved, again)  # fmt: skip
        if found is None:
            continue
        key, index, pos, own = found
        op = seq[pos].text
        if own:
            made[id(seq)] = (key, None, op, True)
            continue
        made_here = definitions.define(seq, pos, key, index, scope, symbols, defined)
        made[id(seq)] = (key, made_here, op, False)
        defined[key] = made_here
    return made


def _prose_definition(math, scope, defined, result):
    """Record the definition the inline math ``math`` (``prose``) makes, if
    any, in ``defined``, with a note in ``result``; the setting's own names
    and symbols that already mean something are left alone."""
    seq = math.seq
    # a scalar f or D the prose defines ("For $f = ...$", "and $D = \\sum_i
    # g_i$"): letters the vocabulary reads otherwise in a display; "for $f =
    # ...$" may define f again
    made = _definitions([seq], scope, defined, definitions.RESERVED - {"f", "D"},
                        math.word == "for")  # fmt: skip
    if id(seq) not in made or made[id(seq)][3]:
        return
    key, definition, op, _ = made[id(seq)]
    shown = key.removesuffix("[]")
    at = f" at {definition.index}" if definition.index else ""
    if definition.error is not None:
        result.notes.append(
            f"line {math.line}: ${math.source}$ defines {shown} in the prose, "
            f"but its right side cannot be read: {definition.error}; its later "
            "uses are unsupported"
        )
        return
    result.notes.append(
        f"line {math.line}: ${math.source}$ defines {shown}{at} in the prose "
        f"({op}), recorded, not checked: later lines use it, to the end of the "
        "file or until it is defined again"
    )


def _definition_line(found, seq, latex):
    """(the LineResult of a chain's defining relation or None, whether the
    chain has relations after it to check)."""
    key, definition, op, own = found
    pos = next(k for k, t in enumerate(seq) if t.text in RELATIONS)
    more = any(t.text in RELATIONS for t in seq[pos + 1 :])
    line = seq[pos].line
    shown = key.removesuffix("[]")
    if own and op == "=":
        return None, more  # a claim about the setting's own symbol: checked
    if own:
        reason = (
            f"a definition (:=) of {shown}, which the setting binds: not "
            f"substituted, later lines use the setting's {shown}"
        )
        return _line(line, latex, op, UNCHECKED, reason=reason,
                     kind="definition"), more  # fmt: skip
    if definition.error is not None and key.startswith("\\hat{") and not more:
        reason = (
            f"a definition of the estimator {shown} ({op}), recorded, not checked; "
            f"its right side cannot be read ({definition.error}): its later uses "
            "are unsupported"
        )
        return _line(line, latex, op, UNCHECKED, reason=reason,
                     kind="definition"), False  # fmt: skip
    if definition.error is not None:
        reason = (
            f"a definition of {shown} whose right side cannot be read: "
            f"{definition.error}; its later uses (and this chain) are unsupported"
        )
        return _line(line, latex, op, UNSUPPORTED, reason=reason), False
    at = f" at {definition.index}" if definition.index else ""
    reason = (
        f"a definition of {shown}{at} ({op}), recorded, not checked: later lines "
        "use it, to the end of the file or until it is defined again"
    )
    return _line(line, latex, op, UNCHECKED, reason=reason,
                 kind="definition"), more  # fmt: skip


#: Tokens that make a first reading stop where matrix notation would go on.
_MATRIX_TOKENS = {"\\det", "tr", "Tr", "||", "\\top", "^", "_", "x", "z"}


def _continued(disp, tail):
    """(the display's chains, the tail for the next display).

    A display that starts with a relation (``= \\log p(x) - ...`` after a
    display ending in ``\\mathcal{L}``) continues the previous display's
    chain: its first chain gets that chain in front, so the judge compares
    each new side with the last side that held, as within one display (the
    earlier relations are reported with their own display only). The tail
    is the display's last chain; None after a display that cannot be read.
    Chains are None when the display cannot be read (the caller reports it).
    """
    try:
        if disp.error is not None:
            return None, None
        seqs = split_equations(disp)
    except MalformedLatex:
        return None, None
    if tail and seqs[0][0].text in RELATIONS:
        seqs[0] = tail + seqs[0]
    return seqs, seqs[-1]


def check_latex_file(path, **kwargs):
    """``check_latex_text`` on the file at ``path``."""
    return check_latex_text(read_text(path), path, **kwargs)


#: Relations as the reports print them.
OP_TEXT = {
    "=": "=",
    "\\neq": "!=",
    "\\le": "<=",
    "\\ge": ">=",
    "<": "<",
    ">": ">",
    ":=": ":=",
    "\\approx": "~",
    "\\propto": "propto",
    UP_TO_CONSTANT: "=",
}


def format_result(result, explain=False):
    """The text report of one file (``report.format_file``) as one string."""
    return "\n".join(format_file(result, explain=explain))


@dataclass
class CorpusSummary:
    """Precision and recall of flagged lines against known verdicts, and the
    separation of '=' lines: smallest deviation of a failing line, largest of
    a holding one."""

    precision: float
    recall: float
    smallest_failing: float
    largest_holding: float
    text: str


def corpus_summary(pairs):
    """Summarise ``(expected status, LineResult)`` pairs of a corpus."""
    flagged = [want for want, r in pairs if r.verdict == FAILS]
    planted = [r.verdict for want, r in pairs if want == FAILS]
    precision = flagged.count("fails") / len(flagged) if flagged else 1.0
    recall = planted.count("fails") / len(planted) if planted else 1.0
    eq = [r for _, r in pairs if r.relation == "=" and r.verdict in (HOLDS, FAILS)]
    failing = min((r.deviation for r in eq if r.verdict == FAILS), default=np.inf)
    holding = max((r.deviation for r in eq if r.verdict == HOLDS), default=0.0)
    text = (
        f"{len(pairs)} lines, {len(planted)} planted errors: "
        f"precision {precision:.3f}, recall {recall:.3f}; separation of '=' lines: "
        "smallest failing deviation "
        f"{failing:.2e}, largest holding deviation {holding:.2e}"
    )
    return CorpusSummary(precision, recall, failing, holding, text)
