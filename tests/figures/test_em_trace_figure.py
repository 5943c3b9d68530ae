"""The data of the EM-trace figure: exact EM seen per half-step."""

import numpy as np
import pytest

from refvi.figures import em_trace

#: Rounding allowance per datum on values of order 10 (sums over <= 450 data).
ROUND = 1e-12


def violations(data):
    """What the figure claims, as a list of the half-steps that break it."""
    bad = []
    e, m = data.step == "E", data.step == "M"
    if np.any(np.abs(data.gap[e]) > ROUND):
        bad.append("gap not zero after an E-step")
    if np.any(data.gap[m] < -ROUND):
        bad.append("negative gap after an M-step")
    if np.any(np.diff(data.elbo) < -ROUND):
        bad.append("F decreased")
    if np.any(np.diff(data.log_lik) < -ROUND):
        bad.append("log p(x) decreased")
    # the M-step raises log p(x) at least as much as F (derivations/em.md)
    rise_ll = data.log_lik[1::2] - data.log_lik[0::2]
    rise_F = data.elbo[1::2] - data.elbo[0::2]
    if np.any(rise_ll < rise_F - ROUND):
        bad.append("log p(x) rose less than F in an M-step")
    return bad


@pytest.mark.parametrize("make", [em_trace.factor_analysis_data, em_trace.mixture_data])
def test_e_step_closes_the_gap_and_m_step_raises_both(make):
    data = make()
    assert data.step.shape == data.log_lik.shape == data.elbo.shape == (24,)
    assert violations(data) == []
    # the figure shows something: EM moves, and each M-step opens a real gap
    assert data.log_lik[-1] - data.log_lik[0] > 0.1
    assert np.all(data.gap[data.step == "M"][:5] > 1e-4)


def test_violations_catch_a_planted_decrease_and_an_open_e_step_gap():
    data = em_trace.mixture_data(n_iter=3)
    assert violations(data) == []
    worse = data._replace(log_lik=data.log_lik.copy())
    worse.log_lik[-1] = worse.log_lik[-2] - 1e-6
    assert "log p(x) decreased" in violations(worse)
    open_gap = data._replace(gap=data.gap + 1e-9)
    assert "gap not zero after an E-step" in violations(open_gap)


def test_half_steps_interleave_the_trace():
    data = em_trace.factor_analysis_data(n_iter=2)
    np.testing.assert_array_equal(data.step, ["E", "M", "E", "M"])
    # the log-likelihood does not change in an E-step
    assert data.log_lik[1] == data.log_lik[2]
