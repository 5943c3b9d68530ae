"""refvi.categorical: closed forms against exact sums and Monte Carlo.

Routes: exact sums over the K outcomes in 50-digit arithmetic (mpmath) and
with the quadrature toolkit's ``expect_discrete``; Monte Carlo at fixed seeds
(within 5 standard errors); central differences and Taylor remainders for the
gradients (1e-7 relative), including at logits of magnitude 1e3. Each checker
is shown to fail on a deliberately wrong input.
"""

import mpmath
import numpy as np
import pytest

from refvi import categorical as C
from refvi.verify.gradcheck import assert_gradcheck, gradcheck, taylor_test
from refvi.verify.montecarlo import assert_z_test, mc_mean, z_test
from refvi.verify.quadrature import expect_discrete

SUM_RTOL = 1e-10  # closed form vs exact sum, relative
GRAD_RTOL = 1e-7  # handwritten gradient vs central differences, relative
N_SIGMA = 5  # Monte Carlo: standard errors
EXTREME = np.array([1000.0, -1000.0, 999.5])


def mp_log_softmax(row):
    """log softmax of one row in 50-digit arithmetic."""
    with mpmath.workdps(50):
        row = [mpmath.mpf(float(v)) for v in row]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row))
        return [v - lse for v in row]


def mp_entropy(row):
    with mpmath.workdps(50):
        return float(-mpmath.fsum(mpmath.exp(v) * v for v in mp_log_softmax(row)))


def mp_kl(row_q, row_p):
    """KL(q || p) in 50-digit arithmetic, the expectation under the first."""
    with mpmath.workdps(50):
        log_q, log_p = mp_log_softmax(row_q), mp_log_softmax(row_p)
        return float(
            mpmath.fsum(
                mpmath.exp(a) * (a - b) for a, b in zip(log_q, log_p, strict=True)
            )
        )


def rel_err(a, b):
    return np.max(np.abs(np.asarray(a) - b) / np.abs(b))


def random_logits(rng, shape):
    return 2.0 * rng.standard_normal(shape)


# ---------------------------------------------------------------------------
# Values against exact sums


@pytest.mark.parametrize("K", [2, 3, 7])
def test_log_softmax_matches_extended_precision(K):
    rng = np.random.default_rng(K)
    for row in (random_logits(rng, K), 1e3 * rng.standard_normal(K)):
        exact = np.array([float(v) for v in mp_log_softmax(row)])
        # log p to 1e-14 relative (absolute near log p = 0), p to 1e-14 relative
        np.testing.assert_allclose(C.log_softmax(row), exact, rtol=1e-14, atol=1e-15)
        kept = exact > -700  # exp underflows below
        assert rel_err(C.softmax(row)[kept], np.exp(exact[kept])) <= 1e-14


@pytest.mark.parametrize("K", [2, 3, 7])
def test_entropy_and_kl_match_exact_sums(K):
    rng = np.random.default_rng(10 + K)
    logits_q, logits_p = random_logits(rng, (2, 4, K)), random_logits(rng, (4, K))
    H, D = C.entropy(logits_q), C.kl(logits_q, logits_p)
    assert H.shape == D.shape == (2, 4)
    for idx in np.ndindex(2, 4):
        assert rel_err(H[idx], mp_entropy(logits_q[idx])) <= SUM_RTOL
        assert rel_err(D[idx], mp_kl(logits_q[idx], logits_p[idx[1]])) <= SUM_RTOL


def test_entropy_and_kl_match_expect_discrete():
    rng = np.random.default_rng(20)
    logits_q, logits_p = random_logits(rng, 5), random_logits(rng, 5)
    probs = C.softmax(logits_q)
    k = np.arange(5)
    H = expect_discrete(lambda k: -C.log_prob(logits_q, k), probs)
    D = expect_discrete(
        lambda k: C.log_prob(logits_q, k) - C.log_prob(logits_p, k), probs
    )
    assert rel_err(C.entropy(logits_q), H.value) <= SUM_RTOL
    assert rel_err(C.kl(logits_q, logits_p), D.value) <= SUM_RTOL
    np.testing.assert_array_equal(C.log_prob(logits_q, k), C.log_softmax(logits_q))


def test_extreme_logits_match_extended_precision():
    other = np.array([998.0, 0.0, 1000.0])
    assert np.all(np.isfinite(C.log_softmax(EXTREME)))
    assert rel_err(C.entropy(EXTREME), mp_entropy(EXTREME)) <= 1e-13
    assert rel_err(C.kl(EXTREME, other), mp_kl(EXTREME, other)) <= 1e-13
    assert rel_err(C.kl(other, EXTREME), mp_kl(other, EXTREME)) <= 1e-13


def test_exact_sum_check_fails_on_wrong_kl():
    rng = np.random.default_rng(21)
    logits_q, logits_p = random_logits(rng, 4), random_logits(rng, 4)
    assert rel_err(C.kl(logits_p, logits_q), mp_kl(logits_q, logits_p)) > 1e-3


def test_kl_of_identical_distributions_is_zero():
    for logits in (EXTREME, np.array([0.3, -2.0]), np.zeros(4)):
        value, grads = C.kl_and_grad(logits, logits)
        assert value == 0.0
        assert np.all(grads["logits_q"] == 0) and np.all(grads["logits_p"] == 0)
    # the same distribution written with shifted logits: zero up to round-off
    assert abs(C.kl(EXTREME, EXTREME - 1000.0)) <= 1e-15


def test_single_category_is_certain():
    value, grads = C.log_prob_and_grad([[3.0], [-1.0]], [0, 0])
    np.testing.assert_array_equal(value, 0.0)
    np.testing.assert_array_equal(grads["logits"], 0.0)
    assert C.entropy([5.0]) == 0.0 and C.kl([5.0], [-2.0]) == 0.0


# ---------------------------------------------------------------------------
# Monte Carlo at fixed seeds


def test_entropy_and_kl_match_monte_carlo():
    rng = np.random.default_rng(30)
    logits_q, logits_p = random_logits(rng, 6), random_logits(rng, 6)
    k = rng.choice(6, size=20_000, p=C.softmax(logits_q))
    log_p, log_q = C.log_prob(logits_q, k), C.log_prob(logits_p, k)
    kl_mc = mc_mean(log_p - log_q)
    assert_z_test(mc_mean(-log_p), C.entropy(logits_q), n_sigma=N_SIGMA)
    assert_z_test(kl_mc, C.kl(logits_q, logits_p), n_sigma=N_SIGMA)
    # the reversed KL is a deliberately wrong target
    assert not z_test(kl_mc, C.kl(logits_p, logits_q), n_sigma=N_SIGMA).ok


# ---------------------------------------------------------------------------
# Gradients against central differences


def scalarised(f_and_grad, dout):
    """sum(dout * value) and the gradients computed with that dout."""

    def wrapped(P):
        value, grads = f_and_grad(P, dout)
        return np.sum(dout * value), grads

    return wrapped


@pytest.mark.parametrize(
    ("shape_logits", "shape_k"),
    [((5,), ()), ((3, 5), (3,)), ((5,), (4,)), ((2, 1, 5), (3,))],
)
def test_log_prob_grad_matches_gradcheck(shape_logits, shape_k):
    rng = np.random.default_rng(40)
    logits = random_logits(rng, shape_logits)
    k = rng.integers(0, 5, size=shape_k)
    batch = np.broadcast_shapes(shape_logits[:-1], shape_k)
    dout = rng.standard_normal(batch)
    f = scalarised(lambda P, dout: C.log_prob_and_grad(P["logits"], k, dout), dout)
    assert_gradcheck(f, {"logits": logits}, rtol=GRAD_RTOL)


@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 3, 1)])
def test_entropy_grad_matches_gradcheck(shape):
    rng = np.random.default_rng(50)
    logits = random_logits(rng, shape)
    dout = rng.standard_normal(shape[:-1])
    f = scalarised(lambda P, dout: C.entropy_and_grad(P["logits"], dout), dout)
    assert_gradcheck(f, {"logits": logits}, rtol=GRAD_RTOL)


@pytest.mark.parametrize(
    ("shape_q", "shape_p"),
    [((4,), (4,)), ((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 4))],
)
def test_kl_grad_matches_gradcheck(shape_q, shape_p):
    rng = np.random.default_rng(60)
    P = {
        "logits_q": random_logits(rng, shape_q),
        "logits_p": random_logits(rng, shape_p),
    }
    dout = rng.standard_normal(np.broadcast_shapes(shape_q[:-1], shape_p[:-1]))
    f = scalarised(
        lambda P, dout: C.kl_and_grad(P["logits_q"], P["logits_p"], dout), dout
    )
    assert_gradcheck(f, P, rtol=GRAD_RTOL)


def test_kl_grad_passes_taylor_test():
    rng = np.random.default_rng(70)
    P = {"logits_q": random_logits(rng, (2, 4)), "logits_p": random_logits(rng, (2, 4))}
    dout = rng.standard_normal(2)
    f = scalarised(
        lambda P, dout: C.kl_and_grad(P["logits_q"], P["logits_p"], dout), dout
    )
    result = taylor_test(f, P, rng)
    assert result.ok, result.orders


def at_extreme(f_and_grad, shift):
    """Value at the shifted logits P, gradients at the extreme logits P + shift.

    softmax is shift invariant, so both describe the same distribution;
    central differences at magnitude 1e3 would lose accuracy to round-off.
    """

    def wrapped(P):
        value = f_and_grad({k: v for k, v in P.items()})[0]
        grads = f_and_grad({k: v + shift[k] for k, v in P.items()})[1]
        return value, grads

    return wrapped


def test_gradients_at_extreme_logits_match_gradcheck_of_shifted_copy():
    other = np.array([998.0, 0.0, 1000.0])
    rel_step = 1e-5
    shift = {"logits": 1000.0, "logits_q": 1000.0, "logits_p": 1000.0}
    small = {"logits": EXTREME - 1000.0}
    # steps are relative to the largest |logit| (2000): 1e-5 keeps them ~1e-2
    for f in (
        lambda P: C.entropy_and_grad(P["logits"]),
        lambda P: C.log_prob_and_grad(P["logits"], 2),
    ):
        assert_gradcheck(at_extreme(f, shift), small, rtol=GRAD_RTOL, step=rel_step)
    pair = {"logits_q": EXTREME - 1000.0, "logits_p": other - 1000.0}
    f = at_extreme(lambda P: C.kl_and_grad(P["logits_q"], P["logits_p"]), shift)
    assert_gradcheck(f, pair, rtol=GRAD_RTOL, step=rel_step)
    for grads in (C.entropy_and_grad(EXTREME)[1], C.kl_and_grad(other, EXTREME)[1]):
        assert all(np.all(np.isfinite(g)) for g in grads.values())


def test_gradchecks_fail_on_wrong_gradients():
    rng = np.random.default_rng(80)
    logits = random_logits(rng, 4)

    def wrong_entropy_grad(P):  # drops the + H term of (C.5)
        value, _ = C.entropy_and_grad(P["logits"])
        log_p = C.log_softmax(P["logits"])
        return value, {"logits": -np.exp(log_p) * log_p}

    assert not gradcheck(wrong_entropy_grad, {"logits": logits}).ok
    assert not taylor_test(wrong_entropy_grad, {"logits": logits}, rng).ok


# ---------------------------------------------------------------------------
# Validation, promotion, no mutation


def test_functions_validate_their_arguments():
    with pytest.raises(ValueError, match="logits contains NaN or inf"):
        C.entropy([0.0, -np.inf])
    with pytest.raises(ValueError, match="logits contains NaN or inf"):
        C.log_softmax([np.nan, 1.0])
    with pytest.raises(ValueError, match="logits_p contains NaN or inf"):
        C.kl([0.0, 1.0], [0.0, np.inf])
    with pytest.raises(ValueError, match=r"logits must have shape \(\.\.\., K\)"):
        C.softmax(1.0)
    with pytest.raises(ValueError, match="logits must not be empty"):
        C.entropy(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="logits_q must not be empty"):
        C.kl(np.zeros((0, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="k must lie in 0..2"):
        C.log_prob([0.0, 1.0, 2.0], 3)
    with pytest.raises(ValueError, match="k must lie in 0..2"):
        C.log_prob([0.0, 1.0, 2.0], [-1, 0])
    with pytest.raises(TypeError, match="k must be an integer array"):
        C.log_prob([0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="k must not be empty"):
        C.log_prob([0.0, 1.0], np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="batch shapes do not broadcast: logits"):
        C.log_prob(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="logits_p must have K = 2"):
        C.kl([0.0, 1.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="batch shapes do not broadcast: logits_q"):
        C.kl(np.zeros((3, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="dout must have shape"):
        C.entropy_and_grad(np.zeros((3, 2)), dout=np.ones(2))
    with pytest.raises(ValueError, match="dout contains NaN"):
        C.kl_and_grad([0.0, 1.0], [1.0, 0.0], dout=np.nan)


def test_float32_and_integer_input_are_promoted():
    logits = np.array([[1, 2, 3]])
    value = C.entropy(logits)
    assert value.dtype == np.float64
    assert value[0] == C.entropy(logits.astype(np.float64))[0]
    d32 = C.kl(np.array([0.5, 1.5], dtype=np.float32), np.array([1, 0]))
    assert d32.dtype == np.float64
    assert (
        C.log_prob(np.array([1.0, 2.0], dtype=np.float32), np.int8(1)).dtype
        == np.float64
    )


def test_no_function_mutates_its_inputs():
    rng = np.random.default_rng(90)
    logits_q, logits_p = random_logits(rng, (3, 4)), random_logits(rng, (3, 4))
    k, dout = rng.integers(0, 4, size=3), rng.standard_normal(3)
    arrays = [logits_q, logits_p, k, dout]
    before = [a.copy() for a in arrays]
    C.log_softmax(logits_q)
    C.softmax(logits_q)
    C.log_prob_and_grad(logits_q, k, dout)
    C.entropy_and_grad(logits_q, dout)
    C.kl_and_grad(logits_q, logits_p, dout)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)
