"""The gradient checker checks itself: exact on known gradients, and it fails,
naming the culprit, on deliberately wrong ones."""

import numpy as np
import pytest

from refvi.verify.gradcheck import (
    assert_gradcheck,
    gradcheck,
    numerical_gradient,
    taylor_test,
)

C = np.array([0.3, -1.2, 0.7])


def make_params(rng):
    L_q = np.tril(rng.standard_normal((3, 3)), -1) + np.diag([1.5, 0.8, 2.0])
    return {"W": rng.standard_normal((2, 3)), "b": rng.standard_normal(2), "L_q": L_q}


def f_and_grad(params):
    """f = sum(sin(W c + b)) + c^T L L^T c + sum(log diag L), with gradients."""
    W, b, L = params["W"], params["b"], params["L_q"]
    u = W @ C + b
    Lc = L.T @ C
    value = np.sum(np.sin(u)) + Lc @ Lc + np.sum(np.log(np.diag(L)))
    du = np.cos(u)
    # d(c^T L L^T c)/dL = 2 c (L^T c)^T; d(log L_ii)/dL_ii = 1/L_ii
    dL = np.tril(2 * np.outer(C, Lc) + np.diag(1 / np.diag(L)))
    return value, {"W": np.outer(du, C), "b": du, "L_q": dL}


def edited(edit):
    """f_and_grad whose gradient dict is passed through ``edit``."""

    def fg(params):
        value, grads = f_and_grad(params)
        return value, edit(dict(grads))

    return fg


def wrong_in(name, factor=1.0 + 1e-5):
    """f_and_grad whose gradient for ``name`` is scaled by ``factor``."""
    return edited(lambda grads: {**grads, name: grads[name] * factor})


def test_numerical_gradient_matches_analytic_to_1e_10():
    params = make_params(np.random.default_rng(0))
    numeric = numerical_gradient(lambda p: f_and_grad(p)[0], params)
    _, analytic = f_and_grad(params)
    for name in params:
        err = np.max(np.abs(numeric[name] - analytic[name]))
        assert err <= 1e-10 * np.max(np.abs(analytic[name])), name


def test_numerical_gradient_does_not_mutate_params():
    params = make_params(np.random.default_rng(1))
    before = {name: arr.copy() for name, arr in params.items()}
    numerical_gradient(lambda p: f_and_grad(p)[0], params)
    for name in params:
        np.testing.assert_array_equal(params[name], before[name])


@pytest.mark.parametrize("name", ["L", "L_q", "q_L", "L_Sigma"])
def test_default_rule_treats_named_square_factors_as_lower_triangular(name):
    A = np.arange(1.0, 10.0).reshape(3, 3)
    grad = numerical_gradient(lambda p: np.sum(p[name] ** 2), {name: A})[name]
    np.testing.assert_allclose(grad, np.tril(2 * A), rtol=1e-10)


@pytest.mark.parametrize("name", ["W", "Lq", "LL", "Sigma_L_x"])
def test_default_rule_leaves_other_names_full(name):
    A = np.arange(1.0, 10.0).reshape(3, 3)
    grad = numerical_gradient(lambda p: np.sum(p[name] ** 2), {name: A})[name]
    np.testing.assert_allclose(grad, 2 * A, rtol=1e-10)


def test_default_rule_ignores_non_square_L_and_handles_batches():
    rect = np.ones((2, 3))
    batch = np.arange(1.0, 19.0).reshape(2, 3, 3)
    grads = numerical_gradient(
        lambda p: np.sum(p["L"] ** 2) + np.sum(p["L_b"] ** 2),
        {"L": rect, "L_b": batch},
    )
    np.testing.assert_allclose(grads["L"], 2 * rect, rtol=1e-10)
    np.testing.assert_allclose(grads["L_b"], np.tril(2 * batch), rtol=1e-10)


def test_explicit_lower_triangular_overrides_the_rule_and_is_validated():
    A = np.arange(1.0, 10.0).reshape(3, 3)
    grad = numerical_gradient(
        lambda p: np.sum(p["B"] ** 2), {"B": A}, lower_triangular=["B"]
    )["B"]
    np.testing.assert_allclose(grad, np.tril(2 * A), rtol=1e-10)
    with pytest.raises(ValueError, match="lower_triangular names 'C'"):
        numerical_gradient(lambda p: 0.0, {"B": A}, lower_triangular=["C"])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        numerical_gradient(lambda p: 0.0, {"v": np.ones(3)}, lower_triangular="v")


def test_numerical_gradient_refuses_vector_valued_f():
    with pytest.raises(ValueError, match="dout"):
        numerical_gradient(lambda p: p["x"] ** 2, {"x": np.ones(2)})


def test_numerical_gradient_scales_steps_to_small_parameters():
    # f varies on the scale of sigma = 1e-3: an absolute step of 1e-3 would fail
    params = {"sigma": np.array([1e-3, 2e-3])}
    grad = numerical_gradient(lambda p: np.sum(np.log(p["sigma"])), params)["sigma"]
    np.testing.assert_allclose(grad, 1 / params["sigma"], rtol=1e-10)


def test_gradcheck_passes_a_correct_gradient_tightly():
    params = make_params(np.random.default_rng(2))
    result = assert_gradcheck(f_and_grad, params)
    assert result.ok
    assert max(result.errors.values()) <= 1e-9  # well inside rtol = 1e-7
    assert "passed" in result.message


@pytest.mark.parametrize("name", ["W", "b", "L_q"])
def test_gradcheck_names_a_deliberately_wrong_parameter(name):
    params = make_params(np.random.default_rng(3))
    result = gradcheck(wrong_in(name), params)  # a 1e-5 relative error
    assert not result.ok
    assert max(result.errors, key=result.errors.get) == name
    assert result.errors[name] > 1e-7
    assert f"worst parameter '{name}'" in result.message
    assert "analytic" in result.message and "numerical" in result.message
    with pytest.raises(AssertionError, match=f"'{name}'"):
        assert_gradcheck(wrong_in(name), params)


def test_gradcheck_message_gives_the_worst_entry_and_its_values():
    params = {"x": np.array([1.0, 2.0, 3.0])}

    def fg(p):
        g = 2 * p["x"]
        g[1] += 1.0  # the wrong entry
        return np.sum(p["x"] ** 2), {"x": g}

    result = gradcheck(fg, params)
    assert not result.ok
    assert "index (1,)" in result.message
    assert "analytic 5" in result.message and "numerical 4" in result.message


def test_gradcheck_does_not_false_fail_on_a_zero_or_tiny_block():
    params = {"x": np.array([0.5, -1.0]), "unused": np.ones(2), "t": np.ones(2)}

    def fg(p):
        # the gradient w.r.t. t is 1e-9 of the gradient w.r.t. x
        value = np.sum(np.exp(p["x"])) + 1e-9 * np.sum(np.sin(p["t"]))
        grads = {"x": np.exp(p["x"]), "unused": np.zeros(2), "t": 1e-9 * np.cos(p["t"])}
        return value, grads

    assert_gradcheck(fg, params)


def test_gradcheck_catches_a_wrong_tiny_block():
    params = {"x": np.array([0.5, -1.0]), "t": np.ones(2)}

    def fg(p):
        value = np.sum(np.exp(p["x"])) + 1e-6 * np.sum(np.sin(p["t"]))
        grads = {"x": np.exp(p["x"]), "t": 2e-6 * np.cos(p["t"])}  # wrong by 2x
        return value, grads

    result = gradcheck(fg, params)
    assert not result.ok
    assert "worst parameter 't'" in result.message


def test_gradcheck_reports_missing_key_and_wrong_shape():
    params = make_params(np.random.default_rng(4))

    missing = edited(lambda grads: {k: v for k, v in grads.items() if k != "b"})
    result = gradcheck(missing, params)
    assert not result.ok and "missing 'b'" in result.message
    transposed = edited(lambda grads: {**grads, "W": grads["W"].T})
    result = gradcheck(transposed, params)
    assert not result.ok
    assert "grads['W'] has shape (3, 2)" in result.message


def test_gradcheck_rejects_a_factor_gradient_above_the_diagonal():
    params = make_params(np.random.default_rng(5))

    upper = np.triu(np.ones((3, 3)), 1)
    full = edited(lambda grads: {**grads, "L_q": grads["L_q"] + upper})
    result = gradcheck(full, params)
    assert not result.ok
    assert "non-zero above the diagonal: entry (0, 1)" in result.message


def test_gradcheck_reports_a_function_that_mutates_its_input():
    def mutating(p):
        value, grads = f_and_grad(p)
        p["b"] += 1.0
        return value, grads

    result = gradcheck(mutating, make_params(np.random.default_rng(6)))
    assert not result.ok and "modified its input params['b']" in result.message


def test_gradcheck_leaves_params_untouched():
    params = make_params(np.random.default_rng(7))
    before = {name: arr.copy() for name, arr in params.items()}
    gradcheck(f_and_grad, params)
    for name in params:
        np.testing.assert_array_equal(params[name], before[name])


def test_vector_valued_function_checked_through_random_dout():
    # value (n,) = A @ x**2; the convention: grads of sum(dout * value)
    rng = np.random.default_rng(8)
    A = rng.standard_normal((4, 3))
    dout = rng.standard_normal(4)

    def value_and_grad(x, dout, wrong=False):
        value = A @ x**2
        dx = 2 * x * (A.T @ dout) if not wrong else 2 * x * np.sum(A, axis=0)
        return value, {"x": dx}

    def scalarised(wrong):
        def fg(p):
            value, grads = value_and_grad(p["x"], dout, wrong)
            return np.sum(dout * value), grads

        return fg

    params = {"x": rng.standard_normal(3)}
    assert_gradcheck(scalarised(False), params)
    # a backward that ignores dout is caught
    assert not gradcheck(scalarised(True), params).ok


def test_taylor_test_gives_order_two_for_a_correct_gradient():
    params = make_params(np.random.default_rng(9))
    result = taylor_test(f_and_grad, params, np.random.default_rng(10))
    assert result.ok
    np.testing.assert_allclose(result.orders, 2.0, atol=0.1)


@pytest.mark.parametrize("name", ["W", "b", "L_q"])
def test_taylor_test_gives_order_one_for_a_wrong_gradient(name):
    params = make_params(np.random.default_rng(11))
    result = taylor_test(wrong_in(name, 1.01), params, np.random.default_rng(12))
    assert not result.ok
    np.testing.assert_allclose(result.orders, 1.0, atol=0.1)


def test_taylor_test_does_not_depend_on_a_tuned_step():
    # the same verdict for largest steps spanning four orders of magnitude
    params = make_params(np.random.default_rng(13))
    for h0 in [1e-4, 1e-2, 0.5]:
        good = taylor_test(f_and_grad, params, np.random.default_rng(14), h0=h0)
        bad = taylor_test(wrong_in("W", 1.01), params, np.random.default_rng(14), h0=h0)
        assert good.ok and not bad.ok, h0


def test_taylor_test_on_a_linear_function_is_round_off_and_passes():
    params = {"x": np.array([1.0, 2.0])}
    result = taylor_test(
        lambda p: (3 * p["x"][0] - p["x"][1], {"x": np.array([3.0, -1.0])}),
        params,
        np.random.default_rng(15),
    )
    assert result.ok and np.all(np.isinf(result.orders))


def test_taylor_test_skips_steps_that_leave_the_domain():
    # log(x) with x = 0.01: the largest steps make x negative (NaN value)
    params = {"x": np.array([0.01, 0.02])}

    def fg(p):
        with np.errstate(invalid="ignore"):
            return np.sum(np.log(p["x"])), {"x": 1 / p["x"]}

    result = taylor_test(fg, params, np.random.default_rng(16), h0=4.0)
    assert result.ok


def test_taylor_test_validates_its_arguments():
    params = make_params(np.random.default_rng(17))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        taylor_test(f_and_grad, params, 0)
    with pytest.raises(ValueError, match="missing 'b'"):
        taylor_test(
            lambda p: (f_and_grad(p)[0], {"W": p["W"], "L_q": p["L_q"]}),
            params,
            np.random.default_rng(0),
        )
