"""One judge for every relation ``refvi verify`` checks: holds, fails, undetermined.

Both front ends (check blocks and LaTeX) hand each side of a relation to the
judge as a :class:`Value`: the number a computation returned together with an
estimate of its numerical error (zero for plain arithmetic, the quadrature
error estimate for a refined rule, the standard error of a Monte Carlo mean).
With ``scale = max(1, |a|, |b|)`` elementwise (relative above 1, absolute
below), ``d = |a - b| / scale`` (signed ``(a - b) / scale`` for inequalities)
and ``e = (error_a + error_b) / scale``, the true deviation lies in
``[d - e, d + e]``, and

- ``=``: holds if ``d + e <= tol`` on every entry, fails if ``d - e > tol`` on
  some entry, else undetermined;
- ``<=`` (``>=`` mirrored): the same with the signed deviation;
- ``<`` (``>``): holds if ``d + e < -tol`` everywhere, fails if ``d - e >= -tol``
  somewhere;
- ``!=``: holds if ``d - e > separation`` on some entry, fails if
  ``d + e <= separation`` on every entry;
- ``~``: a Monte Carlo estimate against a value, or another estimate, within
  ``sigmas`` standard errors, Bonferroni-adjusted over the entries
  (``montecarlo.z_test``): holds or fails.

Sides whose shapes do not broadcast (matrices of different sizes) fail. A
side that is NaN or infinite (an integral that diverges, a value that
overflows) makes the relation undetermined, as does an error estimate too
large to decide; the comparison says why. A chain ``e0 r1 e1 r2 e2 ...`` is
judged by :func:`judge_chain`: each side is compared with the last side that
held, so exactly the wrong line fails.

The intermediate form both front ends produce is a chain of :class:`Node`:
each side of each relation, on one instance, as the ``Value`` its computation
returned. :func:`judge_instances` judges every chain on every instance and
keeps, per relation, a :class:`Tally`: the worst comparison and the
instances on which the relation fails.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from refvi.verify.montecarlo import MCEstimate, z_test

HOLDS, FAILS, UNDETERMINED = "holds", "fails", "undetermined"

#: Verdicts from best to worst; a line's verdict is its worst over instances.
RANK = {HOLDS: 0, UNDETERMINED: 1, FAILS: 2}


#: A file's defaults: the tolerance of ``=`` and inequalities, the separation
#: of ``!=`` and the standard errors of ``~`` (front matter ``tolerance``,
#: ``separation``, ``sigmas``), for both front ends.
DEFAULT_TOLERANCE = 1e-9
DEFAULT_SEPARATION = 1e-6
DEFAULT_SIGMAS = 5.0


@dataclass(frozen=True)
class Value:
    """One side of a relation as a front end computed it.

    Attributes
    ----------
    value : ndarray
        The value (a Monte Carlo mean for route ``"monte carlo"``).
    error : ndarray or float
        Estimated absolute numerical error, elementwise, >= 0: zero for plain
        arithmetic (rounding only), the quadrature error estimate otherwise.
    route : str
        How it was computed: ``"direct"`` (closed forms, fixed rules and
        arithmetic), ``"quadrature"`` (a rule refined under an error
        estimate), ``"monte carlo"``.
    se : ndarray or None
        The standard error of a Monte Carlo mean (route ``"monte carlo"``).
    n : int or None
        Draws of a Monte Carlo mean.
    log : Value or None
        The same side as the log of a positive quantity (a density): when
        both sides have one, ``=`` and ``!=`` compare the logs, unscaled (an
        absolute difference of logs is a relative difference of densities).
    """

    value: object
    error: object = 0.0
    route: str = "direct"
    se: object = None
    n: int | None = None
    log: object = None

    @property
    def is_estimate(self):
        return self.se is not None


@dataclass(frozen=True)
class Comparison:
    """The judge's verdict on one relation on one instance.

    ``deviation`` is the worst entry's (for ``!=`` the largest separation, for
    ``~`` the largest |z|); ``error`` the numerical error estimate on the
    deviation's scale; ``tolerance`` the bound it was held to (for ``!=`` the
    separation, for ``~`` the z threshold); ``margin`` is positive when the
    line holds with room, negative when it fails; ``reason`` says why a
    comparison is undetermined.
    """

    verdict: str
    deviation: float | None
    error: float
    tolerance: float
    margin: float | None
    route: str
    reason: str | None = None

    @property
    def holds(self):
        return self.verdict == HOLDS


class Node(NamedTuple):
    """One side of a chain on one instance (the intermediate form).

    ``key`` names what the link ending at this side is reported under (a
    line, a relation of a display); ``relation`` is the judge's relation
    written before the side (None for a chain's first side); ``value`` the
    ``Value`` its computation returned; ``tol`` the line's tolerance.
    """

    key: object
    relation: str | None
    value: Value
    tol: float


def _route(a, b):
    return a.route if a.route == b.route else f"{a.route} {b.route}"


#: Why a relation with a NaN or infinite side is undetermined.
NOT_FINITE = (
    "a side's value is not finite (an integral diverges, a value overflows, "
    "or a check returned NaN)"
)


def _finite(value):
    """Whether a ``Value``'s value (and standard error) are all finite."""
    parts = [value.value] + ([value.se] if value.is_estimate else [])
    return all(np.all(np.isfinite(np.asarray(p, dtype=np.float64))) for p in parts)


def _compare_mc(a, b, sigmas):
    """``a ~ b``: a Monte Carlo estimate within ``sigmas`` standard errors.

    The sides' numerical error estimates (a quadrature value compared with
    the estimate, an inner quadrature of the estimate) bound how far the
    exact difference of the means may lie from the computed one: with
    ``s = (error_a + error_b) / se``, the exact z-score lies in
    ``[|z| - s, |z| + s]``, so the line holds if ``|z| + s`` is within the
    threshold on every entry, fails if ``|z| - s`` is beyond it on some
    entry, and is undetermined otherwise.
    """
    if not (_finite(a) and _finite(b)):
        return Comparison(UNDETERMINED, None, np.inf, sigmas, None, "monte carlo",
                          NOT_FINITE)  # fmt: skip
    if not a.is_estimate:
        a, b = b, a
    estimate = MCEstimate(a.value, a.se, a.n)
    if b.is_estimate:
        estimate = MCEstimate(
            a.value - b.value, np.sqrt(a.se**2 + b.se**2), min(a.n, b.n)
        )
        target = np.zeros_like(estimate.mean)
    else:
        target = b.value
    test = z_test(estimate, target, n_sigma=sigmas)
    threshold = float(np.max(test.threshold))
    shape = np.shape(test.z)
    diff = np.abs(np.broadcast_to(estimate.mean - np.asarray(target), shape))
    se = np.broadcast_to(np.asarray(estimate.se, dtype=np.float64), shape)
    error = np.broadcast_to(np.abs(a.error) + np.abs(b.error), shape)
    # in units of the mean (no inf - inf where se = 0): |diff| -+ error
    ok = np.all(diff + error <= threshold * se)
    bad = np.any(diff - error > threshold * se)
    verdict = HOLDS if ok else FAILS if bad else None
    with np.errstate(divide="ignore", invalid="ignore"):
        slack = np.where(error > 0, error / se, 0.0)  # inf where se = 0
        high = np.where(diff + error > 0, (diff + error) / se, 0.0)
    dev = float(np.max(np.abs(test.z)))
    high = float(np.max(high))
    reason = None
    if verdict is None:
        verdict = UNDETERMINED
        reason = (
            f"the numerical error estimate ({float(np.max(slack)):.1e} standard "
            f"errors) is too large to decide at {threshold:.2f} standard errors"
        )
    return Comparison(
        verdict, dev, float(np.max(slack)), threshold, float(threshold - high),
        "monte carlo", reason,
    )  # fmt: skip


def _sizes(a, b):
    """``2x2 and 3x3``: the trailing dimensions of two shapes from the first
    (aligned from the right) in which they differ."""
    sa, sb = np.shape(a), np.shape(b)
    n = max(len(sa), len(sb))
    sa, sb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    i = next(i for i in range(n) if sa[i] != sb[i])
    return " and ".join("x".join(map(str, s[i:])) for s in (sa, sb))


def compare(a, b, relation, tol, separation, sigmas):
    """The verdict on ``a <relation> b`` for two ``Value`` sides (worst entry).

    Parameters
    ----------
    a, b : Value
    relation : str
        ``=``, ``!=``, ``<=``, ``>=``, ``<``, ``>`` or ``~``.
    tol, separation, sigmas : float
        The line's tolerance, the file's separation for ``!=`` and its number
        of standard errors for ``~``.

    Returns
    -------
    Comparison
    """
    if relation == "~":
        return _compare_mc(a, b, sigmas)
    route = _route(a, b)
    bound = separation if relation == "!=" else tol
    in_logs = relation in ("=", "!=") and a.log is not None and b.log is not None
    if in_logs:
        a, b = a.log, b.log
    try:
        x, y = np.broadcast_arrays(
            np.asarray(a.value, dtype=np.float64), np.asarray(b.value, dtype=np.float64)
        )
    except ValueError:  # e.g. matrices of different sizes
        reason = f"the sides have different sizes ({_sizes(a.value, b.value)})"
        return Comparison(FAILS, np.inf, 0.0, bound, -np.inf, route, reason)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        reason = NOT_FINITE
        return Comparison(UNDETERMINED, None, np.inf, bound, None, route, reason)
    scale = np.maximum(1.0, np.maximum(np.abs(x), np.abs(y)))
    if in_logs:
        scale = np.ones_like(scale)
    e = np.broadcast_to((np.abs(a.error) + np.abs(b.error)) / scale, scale.shape)
    if relation in (">=", ">"):
        x, y, relation = y, x, relation.replace(">", "<")
    if relation in ("=", "!="):
        d = np.abs(x - y) / scale
    else:
        d = (x - y) / scale
    if relation == "!=":
        low, high = d - e, d + e
        verdict = (
            HOLDS if np.any(low > bound) else FAILS if np.all(high <= bound) else None
        )
        dev, margin = float(np.max(d)), float(np.max(low) - bound)
    else:
        limit = -tol if relation == "<" else tol
        if relation == "<":
            ok, bad = np.all(d + e < limit), np.any(d - e >= limit)
        else:
            ok, bad = np.all(d + e <= limit), np.any(d - e > limit)
        verdict = HOLDS if ok else FAILS if bad else None
        dev, margin = float(np.max(d)), float(limit - np.max(d + e))
    error = float(np.max(e)) if e.size else 0.0
    reason = None
    if verdict is None:
        verdict = UNDETERMINED
        reason = (
            f"the numerical error estimate {error:.1e} is too large to decide "
            f"at {'separation' if relation == '!=' else 'tolerance'} {bound:.0e}"
        )
        if not np.isfinite(error):
            reason = (
                "a side's numerical error has no bound (a quadrature spent its "
                "budget before reaching a tenth of the tolerance, or an error "
                "interval reaches a pole)"
            )
    return Comparison(verdict, dev, error, bound, margin, route, reason)


def compose(relations):
    """The relation between the ends of a run of links, or None if it has none.

    ``=`` links are transparent; ``<=`` with ``<`` gives ``<``; links pointing
    in both directions, or a ``!=`` or ``~`` in a run of two or more, compose
    to None.
    """
    if len(relations) == 1:
        return relations[0]
    if "!=" in relations or "~" in relations:
        return None
    kinds = set(relations) - {"="}
    if not kinds:
        return "="
    if kinds <= {"<=", "<"}:
        return "<" if "<" in kinds else "<="
    if kinds <= {">=", ">"}:
        return ">" if ">" in kinds else ">="
    return None


def judge_chain(nodes, separation, sigmas):
    """Judge the links of one chain and blame the lines that break it.

    ``nodes`` are ``(key, relation, Value, tol)``; the first node's relation
    is ignored. Each node is compared with the last node that held (through
    the composed relation of the links between them), so one wrong line in a
    chain of equalities is blamed alone and the lines after it are still
    compared with a good value. When the first link fails but the second holds
    and the first value disagrees with the third, the first node is the odd
    one out and is blamed instead.

    Returns
    -------
    list of (key, relation, Comparison)
        One entry per judged link, in order (the first link may be reported
        under the first node's key). A first node whose key no link carries
        (a line that only starts the chain) gets an entry of relation
        ``START``: the first comparison with it that held, else undetermined.
    """
    out = []
    good = 0
    confirmed = None  # a link from the first node that held
    i = 1
    while i < len(nodes):
        key, rel, value, tol = nodes[i]
        relation = compose([n[1] for n in nodes[good + 1 : i + 1]])
        ref = good if relation is not None else i - 1
        relation = relation or rel
        comparison = compare(nodes[ref][2], value, relation, tol, separation, sigmas)
        if comparison.verdict == FAILS and ref == 0 and i == 1 and len(nodes) > 2:
            odd = _first_is_odd(nodes, separation, sigmas)
            if odd is not None:
                link12 = odd
                out.append((nodes[0][0], rel, comparison))
                out.append((key, rel, link12))
                out.append((nodes[2][0], nodes[2][1], link12))
                good, i = 2, 3
                continue
        out.append((key, rel, comparison))
        if comparison.verdict == HOLDS:
            good = i
            if ref == 0 and confirmed is None:
                confirmed = comparison
        i += 1
    if len(nodes) > 1 and all(k != nodes[0][0] for k, _, _ in out):
        out.insert(0, (nodes[0][0], START, confirmed or _unconfirmed(out[0][2])))
    return out


#: The "relation" of a chain's first side when its line has none of its own
#: (a display that is an expression, compared by the lines after it).
START = "start"


def _unconfirmed(first):
    """The verdict on a chain's first side that no link confirmed (and none
    blamed): undetermined."""
    reason = "no line after it holds against its value"
    return Comparison(
        UNDETERMINED, None, first.error, first.tolerance, None, first.route, reason
    )


def _first_is_odd(nodes, separation, sigmas):
    """The comparison of nodes 1 and 2 if it holds while node 0 disagrees
    with node 2 (so node 0, not node 1, is the wrong one); else None."""
    (k0, _, v0, _), (k1, r1, v1, _), (_, r2, v2, tol2) = nodes[:3]
    r02 = compose([r1, r2])
    if r02 is None or "~" in (r1, r2):
        return None
    link12 = compare(v1, v2, r2, tol2, separation, sigmas)
    if link12.verdict != HOLDS:
        return None
    link02 = compare(v0, v2, r02, tol2, separation, sigmas)
    return link12 if link02.verdict == FAILS else None


def worse(relation, old, new):
    """The worse of two comparisons of one relation on two instances.

    The worse verdict (fails, then undetermined, then holds) decides; between
    equal verdicts the larger deviation (for ``!=`` the smaller) is shown.
    """
    if old is None:
        return new
    if RANK[new.verdict] != RANK[old.verdict]:
        return new if RANK[new.verdict] > RANK[old.verdict] else old
    if new.deviation is None or old.deviation is None:
        return old if old.deviation is None else new
    if relation == "!=":
        return new if new.deviation < old.deviation else old
    return new if new.deviation > old.deviation else old


@dataclass
class Tally:
    """One relation's verdict over instances: its worst comparison
    (:func:`worse`) and the labels of the instances on which it fails."""

    comparison: Comparison | None = None
    failing: list = field(default_factory=list)

    def add(self, relation, comparison, label):
        self.comparison = worse(relation, self.comparison, comparison)
        if comparison.verdict == FAILS:
            self.failing.append(label)


def _undecided(comparison):
    """Undetermined by a finite error estimate (not by a side that diverges)."""
    return comparison.verdict == UNDETERMINED and np.isfinite(comparison.error)


def judge_instances(chains_of, instances, separation, sigmas):
    """Judge the chains of a front end on every instance.

    Parameters
    ----------
    chains_of : callable
        ``chains_of(instance, refine)`` -> list of chains (lists of
        :class:`Node`) of that instance. It is called with ``refine=False``,
        and once more with ``refine=True`` when a link is undetermined by a
        finite error estimate: the front end then computes the sides again on
        finer rules, or returns None when it has none finer.
    instances : iterable of (label, instance)
    separation, sigmas : float
        The file's separation of ``!=`` and standard errors of ``~``.

    Returns
    -------
    dict
        ``(key, relation) -> Tally`` for every judged link (``judge_chain``).
    """
    tallies = {}
    for label, instance in instances:
        judged = _judge_all(chains_of(instance, False), separation, sigmas)
        if any(_undecided(c) for _, _, c in judged):
            finer = chains_of(instance, True)
            if finer is not None:
                judged = _judge_all(finer, separation, sigmas)
        for key, relation, comparison in judged:
            tally = tallies.setdefault((key, relation), Tally())
            tally.add(relation, comparison, label)
    return tallies


def _judge_all(chains, separation, sigmas):
    return [j for chain in chains for j in judge_chain(chain, separation, sigmas)]
