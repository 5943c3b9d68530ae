"""pytest helpers: assert that an implementation matches refvi's reference cases.

::

    from refvi.testing import assert_matches

    def test_my_kl():
        assert_matches(my_kl, "gaussian.kl_full.*")   # every case of the family

See ``refvi.crosscheck`` for the catalogue, the comparison and the conventions.
"""

from refvi.crosscheck.case import Case
from refvi.crosscheck.catalogue import find_cases
from refvi.crosscheck.compare import compare
from refvi.crosscheck.stochastic import check_estimator

__all__ = ["assert_matches", "assert_estimator"]


def _cases(case):
    if isinstance(case, Case):
        return [case]
    if isinstance(case, str):
        return find_cases(case)
    if isinstance(case, list | tuple) and case:
        return [c for item in case for c in _cases(item)]
    raise TypeError(
        "case must be a Case, a case name or pattern, or a list of them; got "
        f"{type(case).__name__}"
    )


def assert_matches(fn, case, *, outputs=None, convert=None, rtol=None):
    """Compare ``fn`` with each case (``refvi.crosscheck.compare``); raise
    AssertionError naming every failing case, output and worst entry.

    ``case`` is a Case, a case name, a wildcard pattern (``"mixture.elbo.*"``)
    or a list of them. Returns the reports when everything matches.
    """
    kw = {"outputs": outputs, "convert": convert, "rtol": rtol}
    reports = [compare(fn, c, **kw) for c in _cases(case)]
    failed = [o.describe(r.case) for r in reports for o in r.failures]
    if failed:
        raise AssertionError("\n".join(failed))
    return reports


def assert_estimator(estimator, exact, n_samples, rng, **kwargs):
    """Run ``refvi.crosscheck.check_estimator``; raise AssertionError with its
    summary (worst entry, z, threshold, detectable bias) when it fails."""
    result = check_estimator(estimator, exact, n_samples, rng, **kwargs)
    if not result.passed:
        raise AssertionError(str(result))
    return result
