"""The data of the estimator-variance figure: every estimator unbiased, the
path derivative exact at the posterior."""

import numpy as np
from scipy.stats import norm

from refvi.figures import estimator_variance as ev

#: Two-sided false-failure rate of the whole unbiasedness check, Bonferroni
#: over estimators, distances and gradient entries.
FALSE_FAILURE = 1e-6


def test_every_estimator_is_unbiased_for_the_closed_form_gradient():
    c = ev.data()
    n_tests = c.mean.size
    n_sigma = norm.isf(FALSE_FAILURE / (2 * n_tests))
    # a zero-variance estimator is compared to rounding (1e-12 relative)
    scale = np.hypot(c.se, 1e-12 * np.abs(c.analytic)[None] + 1e-14)
    z = np.abs(c.mean - c.analytic[None]) / scale
    assert z.max() < n_sigma, z.max()
    # and the check has power: a bias of 0.1 is caught
    assert (np.abs(c.mean + 0.1 - c.analytic[None]) / scale).max() > n_sigma


def test_variance_is_zero_at_the_posterior_and_positive_away_from_it():
    c = ev.data()
    names = list(ev.ESTIMATORS)
    at, away = c.distance == 0, c.distance > 0
    for name in ("path derivative", "score function, baseline"):
        i = names.index(name)
        assert np.all(c.variance[i, at] < 1e-20), name
        assert np.all(c.variance[i, away] > 1e-4), name
    for name in ("reparameterization", "score function"):
        assert np.all(c.variance[names.index(name)] > 1.0), name
    # the baseline lowers the score function's variance everywhere here
    assert np.all(
        c.variance[names.index("score function, baseline")]
        < c.variance[names.index("score function")]
    )
