"""Input validation: every refusal names the argument; valid input is promoted."""

import numpy as np
import pytest

from refvi._validate import (
    as_data,
    as_float_array,
    check_int,
    check_lower_cholesky,
    check_positive,
    check_rng,
    cholesky_of_spd,
)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int8, np.float64])
def test_real_arrays_are_promoted_to_float64(dtype):
    a = np.arange(6).reshape(2, 3).astype(dtype)
    out = as_float_array(a, "a", ndim=2, shape=(2, 3))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize(
    "value, error, match",
    [
        (np.array([1.0, np.nan]), ValueError, r"w contains NaN or inf \(1 non"),
        (np.array([np.inf, 1.0]), ValueError, "w contains NaN or inf"),
        (np.array([True, False]), TypeError, "w must be a real numeric array"),
        (np.array([1 + 1j]), TypeError, "w must be a real numeric array"),
        (np.array(["a"]), TypeError, "w must be a real numeric array"),
        (np.zeros((0,)), ValueError, "w must not be empty"),
        (np.zeros((2, 2)), ValueError, r"w must have 1 dimension\(s\); got shape"),
        (np.zeros(3), ValueError, r"w must have shape \(2,\); got \(3,\)"),
    ],
)
def test_bad_arrays_are_refused_by_name(value, error, match):
    with pytest.raises(error, match=match):
        as_float_array(value, "w", ndim=1, shape=(2,))


def test_data_must_be_two_dimensional_with_rows_of_length_d():
    assert as_data([[1, 2]], d=2).shape == (1, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 3\); got \(4, 2\)"):
        as_data(np.zeros((4, 2)), d=3)
    with pytest.raises(ValueError, match="x must have 2 dimension"):
        as_data(np.zeros(3), d=3)
    with pytest.raises(ValueError, match="x must not be empty"):
        as_data(np.zeros((0, 3)), d=3)


def test_cholesky_factor_checks():
    L = np.array([[2.0, 0.0], [0.5, 1.0]])
    assert check_lower_cholesky(L, "L") is not None
    with pytest.raises(ValueError, match="L_q must be lower triangular; largest"):
        check_lower_cholesky(L.T, "L_q")
    with pytest.raises(ValueError, match="L_q must have a positive diagonal; got min"):
        check_lower_cholesky(np.array([[1.0, 0.0], [0.5, -1.0]]), "L_q")
    with pytest.raises(ValueError, match=r"L_q must have shape \(3, 3\)"):
        check_lower_cholesky(L, "L_q", d=3)
    with pytest.raises(ValueError, match="L_q must be square"):
        check_lower_cholesky(np.zeros((2, 3)), "L_q")


def test_cholesky_of_spd_matches_numpy_and_names_the_matrix():
    A = np.array([[4.0, 1.0], [1.0, 3.0]])
    np.testing.assert_allclose(cholesky_of_spd(A, "Sigma"), np.linalg.cholesky(A))
    with pytest.raises(ValueError, match="Sigma must be symmetric; largest"):
        cholesky_of_spd(np.array([[4.0, 1.0], [0.0, 3.0]]), "Sigma")
    with pytest.raises(
        ValueError, match="Sigma must be positive definite; its smallest eigenvalue"
    ):
        cholesky_of_spd(np.array([[1.0, 2.0], [2.0, 1.0]]), "Sigma")


def test_positive_rng_and_int_checks():
    np.testing.assert_array_equal(check_positive([1, 2], "psi"), [1.0, 2.0])
    with pytest.raises(ValueError, match="psi must be positive; got min -0.3"):
        check_positive([1.0, -0.3], "psi")
    rng = np.random.default_rng(0)
    assert check_rng(rng) is rng
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        check_rng(np.random.RandomState(0))
    assert check_int(np.int64(3), "n", minimum=1) == 3
    with pytest.raises(TypeError, match="n must be an integer; got float"):
        check_int(3.0, "n")
    with pytest.raises(TypeError, match="n must be an integer; got bool"):
        check_int(True, "n")
    with pytest.raises(ValueError, match="n must be >= 1; got 0"):
        check_int(0, "n", minimum=1)


def test_validation_never_writes_to_its_input():
    a = np.array([[1.0, 0.0], [0.3, 2.0]])
    before = a.copy()
    check_lower_cholesky(a, "L")
    cholesky_of_spd(a @ a.T, "Sigma")
    as_float_array(a, "a")
    np.testing.assert_array_equal(a, before)
