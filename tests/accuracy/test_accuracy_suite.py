"""Every public value and gradient vs a 50-digit evaluation of its naive formula.

The corpus and the comparison are in ``suite.py``; each check passes when every
output is within 1e-12 relative of the reference, or within 16 kappa eps where
the problem's own condition number kappa is larger. The default run checks the
corpus; ``benchmarks/accuracy_table.py`` measures it and writes docs/accuracy.md.
"""

import numpy as np
import pytest
import suite


def _checks():
    out = []
    for make in suite.ALL.values():
        for check in make():
            out.append(pytest.param(check, id=f"{check.function}[{check.case}]"))
    return out


@pytest.mark.parametrize("check", _checks())
def test_matches_50_digit_reference(check):
    bad = [r for r in suite.measure(check, np.random.default_rng(0)) if not r.ok]
    assert not bad, "; ".join(
        f"{r.output}: err {r.err:.3g} (kappa eps {r.kappa * suite.EPS:.3g})"
        for r in bad
    )


def test_measure_catches_a_wrong_value():
    """The comparison fails a value off by 1e-10 relative (a well-conditioned case)."""
    check = suite.gaussian_checks()[0]
    wrong = check._replace(got={**check.got, "value": check.got["value"] * (1 + 1e-10)})
    results = suite.measure(wrong, np.random.default_rng(0))
    assert not all(r.ok for r in results)
