"""refvi.crosscheck.compare and refvi.testing.assert_matches: a correct NumPy
implementation passes; each planted bug fails, naming the output and entry."""

import numpy as np
import pytest
from numpy_impls import (
    gaussian_kl,
    gaussian_log_prob,
    linear_gaussian_elbo,
    mixture_em_step_full,
)

from refvi.crosscheck import compare, get_case, to_numpy
from refvi.testing import assert_matches


def _with_bug(fn, bug):
    return lambda **kw: fn(**kw, bug=bug)


KL = "gaussian.kl_full.ordinary"
KL_OUT = ["value", "grad_mean_q"]


def test_a_correct_numpy_kl_passes_and_the_report_says_so():
    report = compare(gaussian_kl, KL, outputs=KL_OUT)
    assert report.passed, str(report)
    assert [o.name for o in report.outputs] == KL_OUT
    for o in report.outputs:
        assert o.rel_error <= 1e-12 and o.max_abs_error <= 1e-12
    assert "output 'value' ok" in str(report)


@pytest.mark.parametrize(
    "bug, output",
    [
        ("no_trace", ["value"]),
        ("reversed", ["value", "grad_mean_q"]),
        ("transposed", ["grad_mean_q"]),
    ],
)
def test_planted_kl_bugs_fail_naming_output_and_entry(bug, output):
    report = compare(_with_bug(gaussian_kl, bug), KL, outputs=KL_OUT)
    assert not report.passed
    assert [o.name for o in report.failures] == output
    output = output[0]
    with pytest.raises(AssertionError) as err:
        assert_matches(_with_bug(gaussian_kl, bug), KL, outputs=KL_OUT)
    message = str(err.value)
    failure = report.failures[0]
    worst = list(failure.worst_index)
    assert f"{KL}: output {output!r} FAILS: worst entry {worst}" in message
    assert failure.rel_error > 1e-6


def test_an_elbo_missing_the_entropy_fails_on_value():
    case = "linear_gaussian.elbo_full.ordinary"
    assert_matches(linear_gaussian_elbo, case, outputs=["value"])
    bug = _with_bug(linear_gaussian_elbo, "no_entropy")
    report = compare(bug, case, outputs=["value"])
    (failure,) = report.failures
    assert failure.name == "value" and failure.worst_index in {(i,) for i in range(5)}
    L_q = get_case(case).inputs["L_q"]
    entropy = 0.5 * 2 * (1 + np.log(2 * np.pi)) + np.sum(np.log(np.diag(L_q)))
    assert failure.max_abs_error == pytest.approx(abs(entropy), rel=1e-10)


@pytest.mark.parametrize("bug", [None, "no_reg_covar"])
def test_an_em_step_without_reg_covar_fails_on_a_covariance_diagonal(bug):
    case = "mixture.em_step.full"
    report = compare(_with_bug(mixture_em_step_full, bug), case)
    if bug is None:
        assert report.passed, str(report)
        return
    (failure,) = report.failures
    k, i, j = failure.worst_index
    assert failure.name == "covariances" and i == j
    assert failure.max_abs_error == pytest.approx(1e-6, rel=1e-6)


def test_assert_matches_takes_patterns_and_lists_every_failure():
    reports = assert_matches(gaussian_kl, "gaussian.kl_full.ordinary", outputs=KL_OUT)
    assert len(reports) == 1
    with pytest.raises(AssertionError) as err:
        assert_matches(
            _with_bug(gaussian_kl, "no_trace"), "gaussian.kl_full.*", outputs=["value"]
        )
    # 3 of the 4 cases: at an offset of 1e8 sigma the trace (~2) is below the
    # rounding of KL ~ 8e15, so dropping it changes nothing there
    assert str(err.value).count("output 'value' FAILS") == 3
    assert "offset-1e8" not in str(err.value)


def test_the_stress_cases_catch_whitening_before_shifting():
    """The accuracy corpus's cases are where implementations go wrong: whitening
    x and the mean separately loses eps |mean| / sigma at an offset of 1e8 sigma,
    invisible on ordinary data."""
    bug = _with_bug(gaussian_log_prob, "whiten_first")
    for variant in ("ordinary", "cond-1e10"):
        assert_matches(bug, f"gaussian.log_prob.{variant}", outputs=["value"])
    assert_matches(gaussian_log_prob, "gaussian.log_prob.*", outputs=["value"])
    report = compare(bug, "gaussian.log_prob.offset-1e8", outputs=["value"])
    print(report)
    assert not report.passed and report.failures[0].rel_error > 1e-10


def test_missing_output_wrong_shape_and_wrong_arity_are_clear_errors():
    def missing(**kw):
        return {"value": gaussian_kl(**kw)["value"]}

    with pytest.raises(ValueError, match=r"fn's result has no output 'grad_mean_q'"):
        compare(missing, KL, outputs=KL_OUT)

    def flat(**kw):
        out = gaussian_kl(**kw)
        return {"value": out["value"], "grad_mean_q": out["grad_mean_q"].ravel()}

    with pytest.raises(
        ValueError,
        match=r"fn's output 'grad_mean_q' has shape \(9,\); "
        r"expected \(3, 3\)",
    ):
        compare(flat, KL, outputs=KL_OUT)
    with pytest.raises(ValueError, match="returned one ndarray"):
        compare(lambda **kw: gaussian_kl(**kw)["value"], KL, outputs=KL_OUT)
    with pytest.raises(ValueError, match="returned 1 values; expected 2"):
        compare(lambda **kw: (gaussian_kl(**kw)["value"],), KL, outputs=KL_OUT)
    with pytest.raises(ValueError, match="outputs must name outputs of"):
        compare(gaussian_kl, KL, outputs=["nope"])
    with pytest.raises(TypeError, match="fn's output 'value' must be an array"):
        compare(lambda **kw: {"value": "abc", "grad_mean_q": 0}, KL, outputs=KL_OUT)
    with pytest.raises(TypeError, match="case must be a Case"):
        compare(gaussian_kl, 3)


def test_tuples_single_arrays_tensor_likes_and_convert():
    class Tensor:  # a stand-in with only .numpy(), like a framework tensor
        def __init__(self, a):
            self.a = np.asarray(a)

        def numpy(self):
            return self.a

    def as_tuple(**kw):
        out = gaussian_kl(**kw)
        return Tensor(out["value"]), Tensor(out["grad_mean_q"])

    assert compare(as_tuple, KL, outputs=KL_OUT).passed
    value_only = compare(lambda **kw: gaussian_kl(**kw)["value"], KL, outputs=["value"])
    assert value_only.passed
    seen = []

    def record(a):
        seen.append(type(a))
        return a.tolist()

    report = compare(
        lambda **kw: gaussian_kl(**{k: np.array(v) for k, v in kw.items()}),
        KL,
        outputs=KL_OUT,
        convert=record,
    )
    assert report.passed and seen == [np.ndarray] * 4
    np.testing.assert_array_equal(to_numpy(Tensor([1, 2])), [1.0, 2.0])


def test_a_nan_output_fails_at_its_entry_and_rtol_overrides():
    def nan_at_1(**kw):
        out = gaussian_kl(**kw)
        out["value"][1] = np.nan
        return out

    report = compare(nan_at_1, KL, outputs=KL_OUT)
    (failure,) = report.failures
    assert failure.worst_index == (1,) and failure.max_abs_error == np.inf
    bug = _with_bug(gaussian_kl, "transposed")
    assert compare(bug, KL, outputs=KL_OUT, rtol=10.0).passed


def test_compare_never_hands_the_case_arrays_to_the_callable():
    case = get_case(KL)

    def vandal(**kw):
        out = gaussian_kl(**kw)
        for v in kw.values():
            v[...] = 0.0
        return out

    compare(vandal, case, outputs=KL_OUT)
    assert np.any(case.inputs["mean_q"] != 0)
    assert compare(gaussian_kl, case, outputs=KL_OUT).passed
