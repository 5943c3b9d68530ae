"""Cross-check another implementation against refvi's reference cases.

- the catalogue (:func:`case_names`, :func:`get_case`, :func:`find_cases`):
  deterministic cases of every model family and quantity, each with its
  inputs, refvi's outputs and each output's tolerance, plus ill-conditioned
  cases from the accuracy corpus;
- :func:`to_json` / :func:`from_json`: the cases as versioned JSON
  (``refvi cases --json``), readable by any JSON parser;
- :func:`compare`: call a user's function on a case's inputs and report each
  output's error, worst entry and verdict (``refvi.testing.assert_matches``
  for pytest);
- :func:`check_estimator`: a z-test of a stochastic estimator against an
  exact expectation, with a stated false-failure rate and power.
"""

from refvi.crosscheck.case import Case, evaluate
from refvi.crosscheck.catalogue import all_cases, case_names, find_cases, get_case
from refvi.crosscheck.compare import OutputReport, Report, compare, to_numpy
from refvi.crosscheck.schema import (
    SCHEMA_VERSION,
    from_json,
    json_schema,
    to_document,
    to_json,
)
from refvi.crosscheck.stochastic import EstimatorTest, check_estimator

__all__ = [
    "Case",
    "EstimatorTest",
    "OutputReport",
    "Report",
    "SCHEMA_VERSION",
    "all_cases",
    "case_names",
    "check_estimator",
    "compare",
    "evaluate",
    "find_cases",
    "from_json",
    "get_case",
    "json_schema",
    "to_document",
    "to_json",
    "to_numpy",
]
