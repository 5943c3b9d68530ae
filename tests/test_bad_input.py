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


def test_harness_overflow_kind_counts_a_nan_and_accepts_a_named_refusal():
    """1e200 data: a naive x^2 - x^2 gives inf - inf = NaN (garbage); a refusal
    naming x, or an inf without NaN, passes."""

    def naive(x):
        x = np.asarray(x, dtype=float)
        return x**2 - x**2

    def refuses(x):
        x = np.asarray(x, dtype=float)
        if np.max(np.abs(x)) > 1e150:
            raise ValueError("x is too large")
        return x.sum()

    assert ("overflow", "garbage") in _statuses(naive)
    assert {s for k, s in _statuses(refuses) if k == "overflow"} == {"ok"}
    assert {
        s for k, s in _statuses(lambda x: np.asarray(x) ** 2) if k == "overflow"
    } == {"ok"}


def test_the_matrix_calls_every_mixture_row_with_every_covariance_type():
    from refvi.models.mixture import COVARIANCE_TYPES

    table = entries()
    prefixes = (
        "refvi.models.mixture.",
        "refvi.models.mixture_em.",
        "refvi.mixture_kl.",
    )
    rows = [name for name in table if name.startswith(prefixes)]
    assert len(rows) >= 25
    for name in rows:
        types = set()
        for entry in table[name]:
            for arg in entry.args.values():
                value = arg.make()
                if isinstance(value, str):
                    types.add(value)
                elif hasattr(value, "covariance_type"):
                    types.add(value.covariance_type)
        assert types == set(COVARIANCE_TYPES), name


# ---------------------------------------------------------------------------
# Each defect the matrix found, one test (each failed before its fix).


def test_mixture_functions_check_the_model_type():
    from refvi import gaussian
    from refvi.models import mixture, mixture_em

    g = gaussian.standard_normal(2)
    x = np.zeros((3, 2))
    with pytest.raises(
        TypeError, match="model must be a GaussianMixture; got Gaussian"
    ):
        mixture.log_marginal(g, x)  # was AttributeError: no attribute 'dim'
    with pytest.raises(TypeError, match="model must be a GaussianMixture; got str"):
        mixture.log_prior("full")
    with pytest.raises(TypeError, match="model must be a GaussianMixture"):
        mixture_em.auxiliary(g, x, np.ones((3, 1)))


def test_record_arguments_are_checked():
    from bad_input_matrix import _estats, _lg, _post, _stats, _x_lg

    from refvi.models import linear_gaussian_em as lge
    from refvi.verify import montecarlo

    with pytest.raises(TypeError, match="estats must be an ExpectedStats; got None"):
        lge.elbo_total(_lg(), None)  # was AttributeError: no attribute 'xbar'
    bad = _estats()._replace(C_mm=np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="estats.C_mm contains NaN"):
        lge.elbo_total(_lg(), bad)  # was nan
    with pytest.raises(ValueError, match="estats.L_S must be lower triangular"):
        lge.m_step_from_stats(_estats()._replace(L_S=np.ones((2, 2))))
    with pytest.raises(ValueError, match="stats.Sigma_hat contains NaN"):
        lge.expected_stats(_lg(), _stats()._replace(Sigma_hat=np.full((3, 3), np.nan)))
    with pytest.raises(ValueError, match=r"post.S must have shape \(2, 2\)"):
        lge.m_step(_x_lg(), _post()._replace(S=np.eye(3)))
    est = montecarlo.mc_mean(np.array([1.0, 2.0, 4.0]))
    with pytest.raises(ValueError, match="estimate.se must be non-negative"):
        montecarlo.z_test(est._replace(se=-1.0), 2.0)
    with pytest.raises(ValueError, match="estimate.mean contains NaN"):
        montecarlo.z_test(est._replace(mean=np.nan), 2.0)  # was z = nan, ok = False


def test_m_step_from_stats_names_the_matrix_that_is_not_positive_definite():
    from bad_input_matrix import _estats

    from refvi.models import linear_gaussian_em as lge

    bad = _estats()._replace(S=-np.eye(2))  # was numpy.linalg.LinAlgError
    with pytest.raises(ValueError, match=r"estats.S \+ estats.C_mm must be positive"):
        lge.m_step_from_stats(bad)


def test_run_em_refuses_a_nan_log_likelihood_instead_of_running_to_max_iter():
    from refvi.models.em import run_em

    def e_step(m):
        return m, float("nan")

    with pytest.raises(ValueError, match="e_step gave the log-likelihood nan"):
        run_em(0.0, e_step=e_step, m_step=lambda p: p, elbo=lambda m, p: 0.0, n=1)
    with pytest.raises(ValueError, match="elbo gave the ELBO inf"):
        run_em(
            0.0,
            e_step=lambda m: (m, -1.0),
            m_step=lambda p: p,
            elbo=lambda m, p: np.inf,
            n=1,
        )
    with pytest.raises(TypeError, match="m_step must be callable; got NoneType"):
        run_em(0.0, e_step=e_step, m_step=None, elbo=lambda m, p: 0.0, n=1)


def test_integrate_refuses_bad_tolerances():
    from refvi.verify.quadrature import integrate

    def f(z):
        return np.exp(-0.5 * z[:, 0] ** 2)

    for bad in (np.nan, np.inf, -1.0):
        with pytest.raises(ValueError, match="epsrel must be a finite number >= 0"):
            integrate(f, 1, epsrel=bad)  # nan was accepted
    with pytest.raises(ValueError, match="epsrel must be >= 1.11e-14"):
        integrate(f, 1, epsrel=0.0)
    with pytest.raises(ValueError, match="f returned nan"):
        integrate(lambda z: np.full(len(z), np.nan), 1)  # was value nan


def test_m_step_accepts_float32_responsibilities():
    from bad_input_matrix import _gm, _x_mix

    from refvi.models import mixture_em

    r = mixture_em.e_step(_x_mix(), _gm())
    m64 = mixture_em.m_step(_x_mix(), r, "full")
    m32 = mixture_em.m_step(_x_mix(), r.astype(np.float32), "full")
    # was: ValueError about "weights" summing to 1.0000000014
    np.testing.assert_allclose(m32.weights, m64.weights, rtol=1e-6)
    with pytest.raises(ValueError, match="r must have rows summing to one"):
        mixture_em.m_step(_x_mix(), 0.5 * r, "full")
    with pytest.raises(TypeError, match="previous must be a GaussianMixture"):
        mixture_em.m_step(_x_mix(), r, "full", previous="full")


def test_mixture_posterior_index_out_of_range_names_i():
    from bad_input_matrix import _mix_post

    post = _mix_post()
    with pytest.raises(ValueError, match="i must be < n = 4"):
        post.mixture(4)  # was IndexError


def test_gradient_checks_refuse_a_non_finite_value():
    from refvi.verify.gradcheck import gradcheck, numerical_gradient, taylor_test

    def nan_and_grad(p):
        return np.nan, {"a": np.zeros(2)}

    params = {"a": np.ones(2)}
    with pytest.raises(ValueError, match="f_and_grad returned nan"):
        taylor_test(nan_and_grad, params, np.random.default_rng(0))  # was ok=True
    with pytest.raises(ValueError, match="f_and_grad returned nan"):
        gradcheck(nan_and_grad, params)
    with pytest.raises(ValueError, match="f returned inf"):
        numerical_gradient(lambda p: np.inf, params)


def test_inference_entry_points_check_their_arguments():
    from bad_input_matrix import _lg, _x_lg

    from refvi.inference import encoder, estimators

    enc = encoder.exact_posterior_encoder(_lg())
    with pytest.raises(TypeError, match="model must be a LinearGaussian; got str"):
        encoder.exact_posterior_encoder("lg")  # was AttributeError
    grads_q = {"m_q": np.ones((6, 2)), "L_q": np.eye(2)}
    with pytest.raises(TypeError, match="encoder must be a LinearEncoder"):
        encoder.encode_backward(None, _x_lg(), grads_q)  # was AttributeError
    with pytest.raises(ValueError, match="grads_q must have the keys"):
        encoder.encode_backward(enc, _x_lg(), {"m_q": np.ones((6, 2))})  # KeyError
    with pytest.raises(ValueError, match="x contains NaN"):
        encoder.encode_backward(enc, np.full((6, 3), np.nan), grads_q)  # was NaN
    q = encoder.encode(enc, _x_lg())
    with pytest.raises(TypeError, match="eps must be a real numeric array"):
        estimators.elbo_reparam_and_grad(_lg(), _x_lg(), q, None)  # AttributeError
    with pytest.raises(TypeError, match="n must be an integer"):
        estimators.check_q(q, None, 2)  # was accepted


def test_entries_whose_squares_overflow_are_refused_by_name():
    """Found by the overflow kind: 1e200 data made responsibilities, their
    gradients and mixture-prior posteriors NaN (inf - inf), quadratures fail
    with a message about f; now every array entry beyond MAX_ABS = 1e150 is
    refused naming its argument."""
    from bad_input_matrix import _gm, _x_mix

    from refvi.models import mixture

    x = _x_mix()
    x[0, 0] = 1e200
    for ctype in mixture.COVARIANCE_TYPES:
        with pytest.raises(ValueError, match="x has an entry of magnitude 1e\\+200"):
            mixture.responsibilities(_gm(ctype), x)  # was a NaN row
