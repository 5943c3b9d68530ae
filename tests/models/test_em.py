"""The EM driver, on a model whose EM fixed point is known by another route.

Model: x_i ~ pi N(0, 1) + (1 - pi) N(3, 1) with only the weight pi unknown.
E-step r_i = p(z_i = 0 | x_i); M-step pi = mean(r). The maximum-likelihood pi
is the root of the score sum_i (phi0_i - phi1_i) / p(x_i), found by brentq.
"""

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import xlogy

from refvi.models.em import EMDecreaseWarning, run_em


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    z = rng.random(400) < 0.3
    x = np.where(z, rng.normal(0.0, 1.0, 400), rng.normal(3.0, 1.0, 400))
    return stats.norm.pdf(x, 0.0, 1.0), stats.norm.pdf(x, 3.0, 1.0)


def problem(data):
    phi0, phi1 = data

    def log_lik(pi):
        return float(np.sum(np.log(pi * phi0 + (1 - pi) * phi1)))

    def e_step(pi):
        return pi * phi0 / (pi * phi0 + (1 - pi) * phi1), log_lik(pi)

    def m_step(r):
        return float(np.mean(r))

    def elbo(pi, r):
        joint = xlogy(r, pi * phi0) + xlogy(1 - r, (1 - pi) * phi1)
        return float(np.sum(joint - xlogy(r, r) - xlogy(1 - r, 1 - r)))

    return dict(e_step=e_step, m_step=m_step, elbo=elbo)


def test_em_reaches_the_root_of_the_score(data):
    phi0, phi1 = data
    pi, trace = run_em(0.9, **problem(data), n=len(phi0), tol=1e-13, max_iter=500)
    pi_mle = optimize.brentq(
        lambda p: np.sum((phi0 - phi1) / (p * phi0 + (1 - p) * phi1)),
        1e-6,
        1 - 1e-6,
        xtol=1e-15,
    )
    assert trace.converged
    assert abs(pi - pi_mle) <= 1e-6  # tol 1e-13 per datum on log p ~ 1e-6 on pi


def test_trace_records_the_em_chain(data):
    _, trace = run_em(0.9, **problem(data), n=len(data[0]), max_iter=20)
    T = trace.n_iter
    assert trace.log_lik.shape == (T + 1,) and trace.elbo_m.shape == (T,)
    # The E-step is exact, so F(q_t, theta_t) = log p(x; theta_t).
    np.testing.assert_allclose(trace.elbo_e, trace.log_lik[:-1], rtol=1e-12)
    # The M-step raises F, and the KL gap closes the rest of the step.
    assert np.all(trace.elbo_m >= trace.elbo_e)
    assert np.all(trace.kl_gap >= 0)
    np.testing.assert_allclose(
        trace.elbo_m + trace.kl_gap, trace.log_lik[1:], rtol=1e-14
    )
    assert np.all(np.diff(trace.log_lik) >= 0)
    assert not trace.decreased.any()


def test_a_decrease_is_flagged_and_never_counts_as_convergence(data):
    steps = problem(data)

    def bad_m_step(r):  # moves pi away from the fixed point
        return 0.5 * float(np.mean(r)) + 0.5 * 0.99

    steps["m_step"] = bad_m_step
    with pytest.warns(EMDecreaseWarning, match="lowered log p"):
        _, trace = run_em(0.3, **steps, n=len(data[0]), tol=1.0, max_iter=5)
    assert trace.decreased[0]
    assert not trace.converged
    assert trace.n_iter == 5


def test_zero_iterations_return_the_initial_model(data):
    pi, trace = run_em(0.4, **problem(data), n=len(data[0]), max_iter=0)
    assert pi == 0.4 and trace.n_iter == 0 and trace.log_lik.shape == (1,)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=0), "n must be >= 1"),
        (dict(n=3, max_iter=-1), "max_iter must be >= 0"),
        (dict(n=3, tol=-1.0), "tol must be a finite number"),
        (dict(n=3, tol=np.nan), "tol must be a finite number"),
    ],
)
def test_bad_arguments_are_named(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_em(0.4, **problem(data), **kwargs)
