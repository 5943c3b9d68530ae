"""No crash on bad input: the matrix of tests/bad_input_matrix.py, as tests.

Every public entry point is called with every bad-input kind that applies to
each of its arguments, one argument at a time; each case must work or raise
ValueError/TypeError naming the argument, never return NaN for valid input,
and never change an input (see the matrix module's docstring).
"""

import numpy as np
import pytest
from bad_input_matrix import (
    EXEMPT,
    MUST_WORK,
    A,
    Entry,
    entries,
    public_entry_points,
    run_entry,
)


def test_every_public_entry_point_is_in_the_matrix():
    """A new public function without a row in the table fails here."""
    covered = set(entries())
    missing = [
        name
        for name in public_entry_points()
        if name not in covered and name not in EXEMPT
    ]
    assert not missing, f"public entry points without a row in ENTRIES: {missing}"
    stale = sorted(set(entries()) - set(public_entry_points()))
    assert not stale, f"rows for names that are not public entry points: {stale}"


def test_the_matrix_tries_at_least_15_kinds_and_the_valid_dtypes():
    from bad_input_matrix import ROLE_KINDS

    kinds = {k for ks in ROLE_KINDS.values() for k in ks}
    assert len(kinds) >= 15
    assert set(MUST_WORK) <= kinds


@pytest.mark.parametrize("name", sorted(entries()))
def test_bad_input_works_or_is_refused_by_name(name):
    bad = [o for o in run_entry(name) if o.status != "ok"]
    assert not bad, "\n".join(
        f"{o.status}: {o.entry}({o.arg}={o.kind} [{o.variant}]): {o.detail[:300]}"
        for o in bad
    )


# ---------------------------------------------------------------------------
# The harness itself is shown to catch each defect it counts.


def _x():
    return np.array([[1.0, 2.0], [3.0, 4.0]])


def _statuses(fn, **kw):
    table = {"planted": [Entry(fn, {"x": A(_x, "data", **kw)})]}
    return {(o.kind, o.status) for o in run_entry("planted", table)}


def test_harness_counts_a_crash():
    def fn(x):
        return np.asarray(x)[5]  # IndexError on every input

    assert ("valid", "garbage") not in _statuses(lambda x: np.sum(x))
    with pytest.raises(IndexError):
        _statuses(fn)  # even the valid call crashes: the table is wrong


def test_harness_counts_crash_garbage_unclear_refused_and_mutation():
    def crashes_on_nan(x):
        x = np.asarray(x, dtype=float)
        if np.isnan(x).any():
            raise ZeroDivisionError("boom")
        return x.sum()

    def accepts_anything(x):
        try:
            return np.asarray(x, dtype=float).sum()
        except (TypeError, ValueError):
            raise ValueError("the argument is bad") from None  # names nothing

    def refuses_float32(x):
        if np.asarray(x).dtype != np.float64:
            raise TypeError("x must be float64")
        return np.sum(x)

    def writes_into_x(x):
        if isinstance(x, np.ndarray) and x.flags.writeable and x.dtype == float:
            x[0, 0] = 7.0
        return np.sum(np.asarray(x, dtype=float))

    assert ("nan", "crash") in _statuses(crashes_on_nan)
    found = _statuses(accepts_anything)
    assert ("nan", "garbage") in found  # NaN in, NaN out: accepted
    assert ("str", "unclear") in found  # refused, but without naming x
    assert ("float32", "refused") in _statuses(refuses_float32)
    assert ("posinf", "mutation") in _statuses(writes_into_x)
