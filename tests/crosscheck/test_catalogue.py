"""The catalogue of reference cases: complete, deterministic, and right by
another route (every gradient in it against central differences)."""

import numpy as np
import pytest

from refvi.crosscheck import case_names, catalogue, evaluate, find_cases, get_case
from refvi.crosscheck.quantities import ACCURACY_SUITE, CLOSED_FORM, QUANTITIES
from refvi.models.mixture import COVARIANCE_TYPES
from refvi.verify.gradcheck import assert_gradcheck

#: Variants built from the accuracy corpus's stress cases (finite differences
#: in float64 cannot check a gradient at condition 1e10 or an offset of 1e8).
STRESS = (
    "cond-1e10",
    "offset-1e8",
    "near-equal-1e-8",
    "psi-1e-10",
    "extreme-logits",
    "tiny-weights",
)


def test_every_quantity_has_cases_and_names_are_unique():
    names = case_names()
    assert len(names) == len(set(names))
    quantities = {get_case(n).quantity for n in names}
    assert quantities == set(QUANTITIES)
    for ctype in COVARIANCE_TYPES:
        for q in ("log_marginal", "elbo", "em_step"):
            assert f"mixture.{q}.{ctype}" in names
    assert len([n for n in names if any(s in n for s in STRESS)]) >= 10


def test_every_output_has_a_tolerance_from_a_stated_source():
    for case in catalogue.all_cases():
        assert set(case.rtol) == set(case.outputs) == set(case.tolerance_source)
        for name, rtol in case.rtol.items():
            assert rtol in (ACCURACY_SUITE, CLOSED_FORM), (case.name, name, rtol)
            assert case.tolerance_source[name]
        assert case.conventions


def test_the_catalogue_is_deterministic():
    before = {c.name: c for c in catalogue.all_cases()}
    catalogue._catalogue.cache_clear()
    after = catalogue.all_cases()
    for case in after:
        old = before[case.name]
        for name, value in case.outputs.items():
            assert np.array_equal(value, old.outputs[name])
        for name, value in case.inputs.items():
            assert np.array_equal(value, old.inputs[name])


def test_evaluate_reproduces_every_case_and_never_mutates_inputs():
    for case in catalogue.all_cases():
        inputs = {k: v.copy() for k, v in case.inputs.items()}
        out = evaluate(case.quantity, inputs, case.options)
        for k, v in inputs.items():
            assert np.array_equal(v, case.inputs[k])
        assert out.keys() == case.outputs.keys()
        for k, v in out.items():
            assert np.array_equal(v, case.outputs[k])


def _gradient_cases():
    for case in catalogue.all_cases():
        # the path derivative drops a mean-zero term: not the gradient of its value
        if any(s in case.name for s in STRESS) or case.name == "vae.sgvb.path":
            continue
        grads = [k for k in case.outputs if k.startswith("grad_")]
        if grads:
            yield case.name


@pytest.mark.parametrize("name", list(_gradient_cases()))
def test_every_gradient_in_the_catalogue_matches_finite_differences(name):
    case = get_case(name)
    wrt = [k[len("grad_") :] for k in case.outputs if k.startswith("grad_")]
    lower = {n for n in wrt if n.startswith(("L", "scale_tril"))}

    def f_and_grad(params):
        out = evaluate(case.quantity, {**case.inputs, **params}, case.options)
        return float(np.sum(out["value"])), {n: out[f"grad_{n}"] for n in wrt}

    assert_gradcheck(
        f_and_grad, {n: case.inputs[n] for n in wrt}, lower_triangular=lower
    )


def test_the_gradient_check_catches_a_wrong_gradient_in_a_case():
    case = get_case("linear_gaussian.log_marginal.ordinary")

    def f_and_grad(params):
        out = evaluate(case.quantity, {**case.inputs, **params}, case.options)
        return float(np.sum(out["value"])), {"W": out["grad_W"] * 1.001}

    with pytest.raises(AssertionError, match="W"):
        assert_gradcheck(f_and_grad, {"W": case.inputs["W"]})


def test_identities_hold_between_cases():
    """ELBO + KL = log p(x) (LG.16) across the linear-Gaussian cases' outputs;
    the mixture KL's bounds bracket its quadrature value; ELBO surgery adds up."""
    elbo = get_case("linear_gaussian.elbo_full.ordinary")
    logp = evaluate(
        "linear_gaussian.log_marginal",
        {k: elbo.inputs[k] for k in ("W", "mu", "psi", "x")},
        {},
    )["value"]
    np.testing.assert_allclose(
        elbo.outputs["value"] + elbo.outputs["kl_to_posterior"], logp, rtol=1e-12
    )
    kl = get_case("mixture_kl.bounds.ordinary").outputs
    assert kl["lower"] <= kl["kl"] <= kl["upper"]
    assert kl["kl"] <= kl["variational_upper_bound"]
    s = get_case("aggregate.surgery.ordinary").outputs
    np.testing.assert_allclose(
        s["expected_kl"], s["mutual_info"] + s["kl_aggregate"], rtol=1e-12
    )


def test_find_cases_and_get_case_refuse_unknown_names():
    assert [c.name for c in find_cases("mixture.em_step.*")] == [
        f"mixture.em_step.{t}" for t in COVARIANCE_TYPES
    ]
    with pytest.raises(ValueError, match="patterns must match.*'nope'"):
        find_cases("nope")
    with pytest.raises(ValueError, match="name must be a case.*'nope'"):
        get_case("nope")
    with pytest.raises(TypeError, match="name must be a str"):
        get_case(3)
    with pytest.raises(ValueError, match="quantity must be one of"):
        evaluate("gaussian.nope", {}, {})
