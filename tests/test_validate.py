"""Input validation: every refusal names the argument; valid input is promoted."""

from typing import NamedTuple

import numpy as np
import pytest

from refvi._validate import (
    as_data,
    as_datum,
    as_float_array,
    as_latent,
    check_callable,
    check_dout,
    check_float,
    check_instance,
    check_int,
    check_lower_cholesky,
    check_positive,
    check_record,
    check_rng,
    check_weights,
    cholesky_of_spd,
    read_only_copy,
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


def test_entries_beyond_max_abs_are_refused_by_name_and_up_to_it_accepted():
    """|entry| <= MAX_ABS = 1e150 exactly: squares then stay finite. Many large
    entries whose sum of squares overflows are still accepted."""
    from refvi._validate import MAX_ABS

    assert MAX_ABS == 1e150
    with pytest.raises(ValueError, match=r"w has an entry of magnitude 1e\+200; "):
        as_float_array([1.0, -1e200], "w")
    with pytest.raises(ValueError, match="w has an entry of magnitude 1.01e\\+150"):
        as_float_array([1.01e150, 0.0], "w")
    big = np.full(10**4, MAX_ABS)  # sum of squares 1e304: the slow path
    np.testing.assert_array_equal(as_float_array(big, "w"), big)
    edge = np.array([-MAX_ABS, 1e-300])
    np.testing.assert_array_equal(as_float_array(edge, "w"), edge)
    with pytest.raises(ValueError, match="w contains NaN or inf"):
        as_float_array([1e200, np.nan], "w")


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


def test_a_stack_of_cholesky_factors_is_checked_factor_by_factor():
    L = np.array([[[1.0, 0.0], [0.5, 2.0]], [[3.0, 0.0], [0.0, 1.0]]])
    np.testing.assert_array_equal(check_lower_cholesky(L, "L_q", d=2, n=2), L)
    upper = L.copy()
    upper[1, 0, 1] = 0.2
    with pytest.raises(ValueError, match="L_q must be lower triangular; largest"):
        check_lower_cholesky(upper, "L_q", d=2, n=2)
    negative = L.copy()
    negative[0, 1, 1] = -1.0
    with pytest.raises(ValueError, match="L_q must have a positive diagonal"):
        check_lower_cholesky(negative, "L_q", d=2, n=2)
    with pytest.raises(ValueError, match=r"L_q must have shape \(3, 2, 2\)"):
        check_lower_cholesky(L, "L_q", d=2, n=3)


def test_mixing_weights_must_form_a_distribution():
    np.testing.assert_array_equal(check_weights([0.25, 0.75, 0.0]), [0.25, 0.75, 0])
    with pytest.raises(ValueError, match="pi must be non-negative; got min -0.1"):
        check_weights([1.1, -0.1], "pi")
    with pytest.raises(ValueError, match=r"pi must sum to one \(within 1e-10\)"):
        check_weights([0.5, 0.4], "pi")


def test_dout_defaults_to_ones_and_is_shape_checked():
    np.testing.assert_array_equal(check_dout(None, 3), np.ones(3))
    np.testing.assert_array_equal(check_dout(None, (2, 2)), np.ones((2, 2)))
    np.testing.assert_array_equal(check_dout([1, 2, 3], 3), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"dout must have shape \(3,\); got \(2,\)"):
        check_dout([1.0, 2.0], 3)


def test_datum_latent_and_read_only_copies():
    assert as_datum([1, 2], 2).shape == (2,)
    with pytest.raises(ValueError, match=r"x must have shape \(3,\)"):
        as_datum([1.0, 2.0], 3)
    assert as_latent(np.zeros((5, 2)), 2).shape == (5, 2)
    with pytest.raises(ValueError, match=r"z must have shape \(\*, 2\)"):
        as_latent(np.zeros((5, 3)), 2)
    a = np.array([1.0, 2.0])
    frozen = read_only_copy(a)
    a[0] = 9.0
    assert frozen[0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        frozen[0] = 3.0


def test_read_only_copy_is_c_contiguous_for_broadcast_and_transposed_input():
    # a broadcast (stride-0) or transposed input copied in its own order came out
    # Fortran-ordered, and every later operation mixing it with C-ordered
    # arrays ran a strided loop
    row = np.arange(3.0)
    for a in (np.broadcast_to(row, (4, 3)), np.arange(12.0).reshape(3, 4).T):
        frozen = read_only_copy(a)
        assert frozen.flags.c_contiguous
        np.testing.assert_array_equal(frozen, a)


def test_check_instance_names_the_argument_and_the_types():
    assert check_instance(3, int, "n") == 3
    with pytest.raises(TypeError, match="model must be a dict; got str"):
        check_instance("abc", dict, "model")


@pytest.mark.parametrize("value", [2, 2.5, np.float32(2.5), np.array(2.5)])
def test_check_float_accepts_real_numbers(value):
    assert check_float(value, "tol") == float(value)


@pytest.mark.parametrize(
    "value, error, match",
    [
        (None, TypeError, "tol must be a real number; got NoneType"),
        ("1e-3", TypeError, "tol must be a real number; got str"),
        (True, TypeError, "tol must be a real number; got bool"),
        (np.ones(2), TypeError, "tol must be a real number; got ndarray"),
        (np.nan, ValueError, "tol must be a finite number >= 0; got nan"),
        (np.inf, ValueError, "tol must be a finite number >= 0; got inf"),
        (-1.0, ValueError, r"tol must be a finite number >= 0; got -1.0"),
    ],
)
def test_check_float_refuses_by_name(value, error, match):
    with pytest.raises(error, match=match):
        check_float(value, "tol", minimum=0.0)


def test_check_callable():
    assert check_callable(len, "f") is len
    with pytest.raises(TypeError, match="f must be callable; got int"):
        check_callable(3, "f")


class _Rec(NamedTuple):
    n: int
    a: np.ndarray
    B: np.ndarray


def test_check_record_promotes_and_checks_each_field_by_name():
    rec = _Rec(3, np.arange(2, dtype=np.float32), np.eye(2))
    out = check_record(rec, _Rec, "rec", {"n": "count", "a": ("d",), "B": ("d", "d")})
    assert out.a.dtype == np.float64 and rec.a.dtype == np.float32  # a copy
    fields = {"n": "count", "a": ("d",), "B": ("d", "d")}
    with pytest.raises(TypeError, match="rec must be a _Rec; got tuple"):
        check_record(tuple(rec), _Rec, "rec", fields)
    with pytest.raises(ValueError, match=r"rec.a must have shape \(3,\); got \(2,\)"):
        check_record(rec, _Rec, "rec", fields, sizes={"d": 3})
    with pytest.raises(
        ValueError, match=r"rec.B must have shape \(2, 2\); got \(3, 3\)"
    ):
        check_record(rec._replace(B=np.eye(3)), _Rec, "rec", fields)
    with pytest.raises(ValueError, match="rec.a contains NaN"):
        check_record(rec._replace(a=np.array([0.0, np.nan])), _Rec, "rec", fields)
    with pytest.raises(ValueError, match="rec.n must be >= 1"):
        check_record(rec._replace(n=0), _Rec, "rec", fields)


@pytest.mark.parametrize("value", [1e-300, -5e-324, 7.0])
def test_one_upper_entry_anywhere_in_a_batched_stack_is_found(value):
    # the check ors the stack over its batch axes: a single tiny or negative
    # subnormal entry above the diagonal of one factor must still count
    L = np.broadcast_to(np.eye(4), (3, 5, 4, 4)).copy()
    L[2, 3, 1, 3] = value
    with pytest.raises(ValueError, match="L must be lower triangular"):
        check_lower_cholesky(L, "L", d=4, batch=True)
    L[2, 3, 3, 1] = value  # below the diagonal: allowed
    L[2, 3, 1, 3] = 0.0
    assert check_lower_cholesky(L, "L", d=4, batch=True) is not None
