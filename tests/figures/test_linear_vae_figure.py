"""The data of the linear-VAE figures: training closes the ELBO gap at the
pPCA maximum; direction j collapses exactly when sigma^2 >= lambda_j."""

import numpy as np

from refvi.figures import linear_vae


def test_training_closes_the_gap_at_the_ppca_maximum():
    c = linear_vae.training_data()
    gap = c.log_lik - c.elbo
    # ELBO <= log p(x) <= the pPCA maximum at every epoch (exact values;
    # 1e-12 for rounding of per-datum means)
    assert np.all(gap >= -1e-12)
    assert np.all(c.log_lik <= c.ppca_max + 1e-12)
    # the gap closes: below 1e-3 of its start, and log p(x) within 1e-4
    assert gap[-1] < 1e-3 * gap[0]
    assert c.ppca_max - c.log_lik[-1] < 1e-4
    assert c.log_lik[-1] - c.log_lik[0] > 1.0  # the training moved


def test_collapse_happens_exactly_at_the_eigenvalues():
    c = linear_vae.collapse_data()
    k = c.column_norm.shape[1]
    expected = c.sigma2[:, None] >= c.eigenvalues[None, :k]
    np.testing.assert_array_equal(c.collapsed, expected)
    # collapsed: W_j = 0 and q(z_j|x) is the prior's variance 1
    assert np.all(c.column_norm[c.collapsed] == 0.0)
    np.testing.assert_allclose(c.posterior_var[c.collapsed], 1.0, rtol=1e-15)
    # alive: |W_j|^2 = lambda_j - sigma2 and S_jj = sigma2 / lambda_j < 1
    live = ~c.collapsed
    lam = np.broadcast_to(c.eigenvalues[:k], c.collapsed.shape)
    s2 = np.broadcast_to(c.sigma2[:, None], c.collapsed.shape)
    np.testing.assert_allclose(c.column_norm[live] ** 2, (lam - s2)[live], rtol=1e-10)
    np.testing.assert_allclose(c.posterior_var[live], (s2 / lam)[live], rtol=1e-12)
    # the grid crosses both eigenvalues: each direction is seen alive and dead
    assert np.all(c.collapsed.any(axis=0)) and np.all(live.any(axis=0))
