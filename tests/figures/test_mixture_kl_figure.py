"""The data of the mixture-KL figure: every route against quadrature."""

import numpy as np
from scipy.stats import norm

from refvi.figures import mixture_kl

#: Monte Carlo: two-sided false-failure rate 1e-6 over the whole grid,
#: Bonferroni over its points.
FALSE_FAILURE = 1e-6


def test_every_route_agrees_with_quadrature_where_it_should():
    c = mixture_kl.data()
    n = c.separation.shape[0]
    # at s = 0, q = p as densities: quadrature and D_var are exactly 0
    assert c.separation[0] == 0.0
    assert abs(c.quadrature[0]) < 1e-14 and abs(c.variational[0]) < 1e-14
    # quadrature is converged (its refinement estimate) well below the curves
    assert np.all(c.quadrature_error < 1e-4)
    slack = c.quadrature_error + 1e-14
    # true bounds bracket the value
    assert np.all(c.lower <= c.quadrature + slack)
    assert np.all(c.quadrature <= c.upper + slack)
    assert np.all(c.quadrature <= c.variational_upper + slack)
    # D_var is not a bound: below the value somewhere on this grid
    assert np.min(c.variational - c.quadrature) < -0.1
    # Monte Carlo within the Bonferroni-adjusted number of standard errors
    n_sigma = norm.isf(FALSE_FAILURE / (2 * n))
    se = np.hypot(c.montecarlo_se, slack)
    assert np.all(np.abs(c.montecarlo - c.quadrature) <= n_sigma * se)
    # KL grows with the separation beyond s = 1
    far = c.separation >= 1
    assert np.all(np.diff(c.quadrature[far]) > 0)


def test_monte_carlo_check_catches_a_planted_bias():
    c = mixture_kl.data(separations=[2.0, 4.0])
    n_sigma = norm.isf(FALSE_FAILURE / 4)
    biased = c.montecarlo + 0.05  # about 6 to 25 standard errors
    assert np.any(np.abs(biased - c.quadrature) > n_sigma * c.montecarlo_se)


def test_pair_is_moment_matched():
    q, p = mixture_kl.pair(3.0)
    mean = q.weights @ q.means[:, 0]
    var = q.weights @ (1.0 + q.means[:, 0] ** 2) - mean**2
    assert mean == 0.0 and var == 1.0 + 3.0**2 / 4
    np.testing.assert_allclose(p.cov, [[var]], rtol=1e-15)
