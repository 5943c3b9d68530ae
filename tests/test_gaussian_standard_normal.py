"""KL against the standard normal: the special cases (G.9), (G.21)-(G.22) of
derivations/gaussian_kl.md, which refvi computes through the general KL."""

import numpy as np

from refvi import gaussian as G


def test_kl_to_standard_normal_is_the_special_case_g9_and_g21():
    """KL(q || N(0, I)) = 1/2 (|L|_F^2 + |mu|^2 - d) - sum log L_jj (G.9), with
    gradients mu and L - diag(1/L_jj) (G.21); 1e-12 relative."""
    rng = np.random.default_rng(7)
    d = 3
    mu = rng.standard_normal(d)
    L = np.tril(0.4 * rng.standard_normal((d, d)), -1) + np.diag(
        np.exp(0.3 * rng.standard_normal(d))
    )
    q = G.Gaussian(mu, scale_tril=L)
    value, grads = G.kl_and_grad(q, G.standard_normal(d))
    expected = 0.5 * (np.sum(L**2) + mu @ mu - d) - np.sum(np.log(np.diag(L)))
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    np.testing.assert_allclose(grads["mean_q"], mu, rtol=1e-12)
    np.testing.assert_allclose(
        grads["scale_tril_q"], L - np.diag(1 / np.diag(L)), rtol=1e-12, atol=1e-14
    )


def test_kl_to_standard_normal_diagonal_is_the_special_case_g22():
    """Kingma-Welling 1/2 sum (mu^2 + e^{2s} - 1 - 2s), gradients mu and
    sigma^2 - 1 (G.22); 1e-12 relative."""
    rng = np.random.default_rng(8)
    mu, s = rng.standard_normal(4), 0.5 * rng.standard_normal(4)
    value, grads = G.kl_and_grad(G.Gaussian(mu, log_std=s), G.standard_normal(4))
    expected = 0.5 * np.sum(mu**2 + np.exp(2 * s) - 1 - 2 * s)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    np.testing.assert_allclose(grads["mean_q"], mu, rtol=1e-12)
    np.testing.assert_allclose(grads["log_std_q"], np.exp(2 * s) - 1, rtol=1e-12)
