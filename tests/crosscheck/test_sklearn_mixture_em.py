"""Cross-check with scikit-learn (test extra): the EM trajectory.

Starting from identical parameters, refvi's EM and
``sklearn.mixture.GaussianMixture`` (same ``reg_covar``, ``tol=0``) must give
the same log-likelihood at every iteration and the same final parameters.
Densities, responsibilities and one EM step from given parameters are
compared on the reference cases in test_sklearn_models.py.
"""

import warnings

import numpy as np
import pytest
from scipy.linalg import cho_solve

from refvi.models import mixture as gm
from refvi.models import mixture_em

sklearn_mixture = pytest.importorskip("sklearn.mixture")

TYPES = gm.COVARIANCE_TYPES
N_ITER = 12


def problem(covariance_type, seed=0, n=400, d=3, K=3):
    """Clustered data and a k-means++ start for it."""
    rng = np.random.default_rng(seed)
    centres = 4.0 * rng.normal(size=(K, d))
    x = centres[rng.integers(K, size=n)] + rng.normal(size=(n, d))
    init = mixture_em.kmeans_plusplus_init(x, K, covariance_type, rng)
    return x, init


def precisions(model):
    """Sigma^{-1} in scikit-learn's layout, by Cholesky solves (test only)."""
    C = model.covariances()
    if model.covariance_type == "full":
        return np.stack([cho_solve((L, True), np.eye(model.d)) for L in model.L])
    if model.covariance_type == "tied":
        return cho_solve((model.L, True), np.eye(model.d))
    return 1.0 / C


def sklearn_trajectory(x, init, reg_covar, n_iter):
    """Per-iteration mean log-likelihoods of scikit-learn's EM from ``init``.

    With ``warm_start=True`` and ``max_iter=1`` every ``fit`` runs one more
    iteration from the previous parameters; ``lower_bound_`` is then the mean
    log p(x) of the parameters before that iteration's M-step.
    """
    sk = sklearn_mixture.GaussianMixture(
        init.n_components,
        covariance_type=init.covariance_type,
        reg_covar=reg_covar,
        tol=0.0,
        max_iter=1,
        warm_start=True,
        init_params="random_from_data",
        weights_init=init.weights,
        means_init=init.means,
        precisions_init=precisions(init),
        random_state=0,
    )
    lls = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after 1 iteration
        for _ in range(n_iter):
            sk.fit(x)
            lls.append(sk.lower_bound_)
    return sk, np.array(lls)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_em_trajectory_matches_sklearn(covariance_type):
    x, init = problem(covariance_type)
    reg = 1e-6
    fit, trace = mixture_em.em(x, init, reg_covar=reg, tol=0.0, max_iter=N_ITER)
    assert trace.n_iter == N_ITER
    sk, sk_ll = sklearn_trajectory(x, init, reg, N_ITER)
    # tolerance 1e-8 relative, per iteration and on the final parameters
    np.testing.assert_allclose(trace.log_lik[:-1] / x.shape[0], sk_ll, rtol=1e-8)
    np.testing.assert_allclose(fit.weights, sk.weights_, rtol=1e-8)
    np.testing.assert_allclose(fit.means, sk.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        fit.covariances(), sk.covariances_, rtol=1e-8, atol=1e-10
    )


def test_trajectory_check_catches_a_different_reg_covar():
    """The cross-check is not vacuous: reg_covar 1e-6 vs 1e-3 is detected."""
    x, init = problem("full")
    _, trace = mixture_em.em(x, init, reg_covar=1e-3, tol=0.0, max_iter=4)
    _, sk_ll = sklearn_trajectory(x, init, 1e-6, 4)
    assert np.max(np.abs(trace.log_lik[1:-1] / x.shape[0] - sk_ll[1:])) > 1e-6
