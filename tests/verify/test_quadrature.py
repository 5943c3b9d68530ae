"""Quadrature checks itself: exact on the polynomials its rule promises (against
Isserlis moments), not beyond, with an error estimate that is small when the
rule has converged and large when it has not."""

import itertools
import math
from functools import cache

import numpy as np
import pytest
from scipy import stats

from refvi.verify.quadrature import (
    expect_discrete,
    expect_gaussian,
    expect_gaussian_refined,
    gauss_hermite_rule,
    integrate,
    log_expect_gaussian,
)


def make_gaussian(d, seed=0):
    """A non-trivial mean and full lower-triangular factor in d dimensions."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(scale=1.5, size=d)
    L = np.tril(0.4 * rng.standard_normal((d, d)), -1) + np.diag(
        rng.uniform(0.5, 1.5, d)
    )
    return mean, L


def gaussian_moment(alpha, mean, Sigma):
    """E[prod_j z_j^alpha_j] for z ~ N(mean, Sigma) by the Isserlis recursion.

    E[z_a X] = mean_a E[X] + sum_{b in X} Sigma_ab E[X without b].
    """

    @cache
    def moment(idx):
        if not idx:
            return 1.0
        a, rest = idx[0], idx[1:]
        total = mean[a] * moment(rest)
        for j, b in enumerate(rest):
            total += Sigma[a, b] * moment(rest[:j] + rest[j + 1 :])
        return total

    return moment(tuple(j for j, k in enumerate(alpha) for _ in range(k)))


def monomial(alpha):
    return lambda z: np.prod(z ** np.asarray(alpha), axis=1)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_rule_is_exact_to_degree_2n_minus_1_in_each_coordinate(d):
    n = 3  # exact for every u^alpha with alpha_j <= 5
    u, w = gauss_hermite_rule(n, d)
    assert u.shape == (n**d, d) and w.shape == (n**d,)
    assert abs(np.sum(w) - 1) <= 1e-14 and np.all(w > 0)
    zeros, identity = np.zeros(d), np.eye(d)
    for alpha in itertools.product(range(2 * n), repeat=d):
        q = w @ monomial(alpha)(u)
        scale = w @ np.abs(monomial(alpha)(u))
        assert abs(q - gaussian_moment(alpha, zeros, identity)) <= 1e-13 * scale, alpha


@pytest.mark.parametrize("n", [1, 3, 8])
def test_rule_is_not_exact_at_degree_2n(n):
    # Gauss-Hermite remainder n!/(2n)! g^(2n): exactly n! for g = u^(2n)
    u, w = gauss_hermite_rule(n, 2)
    alpha = (2 * n, 0)
    exact = gaussian_moment(alpha, np.zeros(2), np.eye(2))  # (2n - 1)!!
    q = w @ monomial(alpha)(u)
    assert abs((exact - q) - math.factorial(n)) <= 1e-12 * exact


@pytest.mark.parametrize("n", [400, 1000, 2000])
def test_high_order_rule_keeps_the_gaussian_moments(n):
    """Refined rules go past the ~400 nodes where hermegauss overflows: the
    weights stay finite and positive and the moments (2j - 1)!! hold."""
    u, w = gauss_hermite_rule(n, 1)
    assert np.all(np.isfinite(u)) and np.all(w >= 0) and abs(np.sum(w) - 1) <= 1e-13
    for j in range(1, 11):
        exact = math.prod(range(1, 2 * j, 2))
        assert abs(w @ u[:, 0] ** (2 * j) - exact) <= 1e-12 * exact, j


def test_rule_nodes_agree_with_numpy_hermegauss():
    from numpy.polynomial.hermite_e import hermegauss

    for n in (2, 20, 60, 200):
        x, v = hermegauss(n)
        u, w = gauss_hermite_rule(n, 1)
        np.testing.assert_allclose(u[:, 0], x, rtol=0, atol=1e-13 * max(1, n / 20))
        np.testing.assert_allclose(w, v / np.sum(v), rtol=0, atol=1e-15)


@pytest.mark.parametrize("d", [0, 5])
def test_rule_refuses_dimensions_outside_1_to_4(d):
    with pytest.raises(ValueError, match="d must be between 1 and 4"):
        gauss_hermite_rule(3, d)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_expect_gaussian_matches_isserlis_moments_to_total_degree_2n_minus_1(d):
    n = 4  # exact for polynomials in z of total degree <= 7 (any full L)
    mean, L = make_gaussian(d, seed=d)
    Sigma = L @ L.T
    for alpha in itertools.product(range(2 * n), repeat=d):
        if sum(alpha) > 2 * n - 1:
            continue
        exact = gaussian_moment(alpha, mean, Sigma)
        result = expect_gaussian(monomial(alpha), mean, L, order=n)
        abs_alpha = lambda z, a=alpha: np.abs(monomial(a)(z))  # noqa: E731
        scale = expect_gaussian(abs_alpha, mean, L, order=n)
        assert abs(result.value - exact) <= 1e-12 * scale.value, alpha


def test_expect_gaussian_fourth_central_moment_is_three_sigma4():
    sigma = 1.7
    result = expect_gaussian(lambda z: (z[:, 0] - 2.0) ** 4, [2.0], [[sigma]], order=3)
    assert abs(result.value - 3 * sigma**4) <= 1e-12 * 3 * sigma**4


def test_expect_gaussian_is_not_exact_beyond_its_degree():
    mean, L = make_gaussian(2)
    alpha = (8, 0)  # order 4 is exact to degree 7
    exact = gaussian_moment(alpha, mean, L @ L.T)
    result = expect_gaussian(monomial(alpha), mean, L, order=4)
    assert abs(result.value - exact) > 1e-6 * abs(exact)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_smooth_integrand_converges_with_a_small_error_estimate(d):
    # E exp(a^T z) = exp(a^T mean + a^T Sigma a / 2)
    mean, L = make_gaussian(d, seed=10 + d)
    a = np.linspace(-0.6, 0.5, d)
    exact = np.exp(a @ mean + 0.5 * a @ L @ L.T @ a)
    result = expect_gaussian(lambda z: np.exp(z @ a), mean, L)
    assert abs(result.value - exact) <= 1e-12 * exact  # default orders
    assert result.error <= 1e-12 * exact


def test_badly_resolved_integrand_has_a_large_error_estimate():
    # P(z > 0.3) for z ~ N(0, 1): a step function, which polynomials resolve badly
    result = expect_gaussian(lambda z: (z[:, 0] > 0.3).astype(float), [0.0], [[1.0]])
    actual = abs(result.value - stats.norm.sf(0.3))
    assert result.error > 1e-4
    assert actual > 1e-4  # the estimate flags a real error


def narrow_ridge(x):
    """N(x_1 + x_2 / 2; 0.2, 0.15^2): a ridge in x narrower than N(0, I)."""
    return stats.norm.pdf(x[:, 0] + 0.5 * x[:, 1] - 0.2, scale=0.15)


def test_refined_expectation_raises_the_order_until_the_estimate_is_small():
    # x_1 + x_2 / 2 ~ N(0, 1.25), so the expectation is N(0.2; 0, 0.15^2 + 1.25)
    exact = stats.norm.pdf(0.2, scale=np.sqrt(0.15**2 + 1.25))
    low = expect_gaussian(narrow_ridge, [0.0, 0.0], np.eye(2), order=40)
    assert abs(low.value - exact) > 1e-4  # the fixed rule is not enough
    result = expect_gaussian_refined(
        narrow_ridge, [0.0, 0.0], np.eye(2), rtol=1e-10, orders=(40, 80, 160, 320)
    )
    assert result.error <= 1e-10
    assert abs(result.value - exact) <= 1e-12


def test_refined_expectation_returns_the_budget_result_when_it_cannot_reach():
    result = expect_gaussian_refined(
        narrow_ridge, [0.0, 0.0], np.eye(2), rtol=1e-14, orders=(20, 30)
    )
    budget = expect_gaussian(narrow_ridge, [0.0, 0.0], np.eye(2), order=30)
    assert result == budget and result.error > 1e-14
    with pytest.raises(ValueError, match="rtol must be positive"):
        expect_gaussian_refined(narrow_ridge, [0.0], [[1.0]], rtol=0, orders=(5,))
    with pytest.raises(ValueError, match="orders must name"):
        expect_gaussian_refined(narrow_ridge, [0.0], [[1.0]], rtol=1, orders=())


def test_expect_gaussian_array_valued_integrand_gives_elementwise_results():
    mean, L = make_gaussian(2, seed=3)
    result = expect_gaussian(
        lambda z: np.stack([z[:, 0], z[:, 0] * z[:, 1]], 1), mean, L
    )
    Sigma = L @ L.T
    exact = [mean[0], mean[0] * mean[1] + Sigma[0, 1]]
    assert result.value.shape == (2,) and result.error.shape == (2,)
    np.testing.assert_allclose(result.value, exact, rtol=1e-12)


def test_expect_gaussian_validates_and_does_not_mutate():
    mean, L = make_gaussian(2)
    mean0, L0 = mean.copy(), L.copy()
    expect_gaussian(lambda z: z[:, 0], mean, L)
    np.testing.assert_array_equal(mean, mean0)
    np.testing.assert_array_equal(L, L0)
    with pytest.raises(ValueError, match="mean must have length 1 to 4"):
        expect_gaussian(lambda z: z[:, 0], np.zeros(5), np.eye(5))
    with pytest.raises(ValueError, match="L must be lower triangular"):
        expect_gaussian(lambda z: z[:, 0], mean, L.T)
    with pytest.raises(ValueError, match=r"L must have shape \(2, 2\)"):
        expect_gaussian(lambda z: z[:, 0], mean, np.eye(3))
    with pytest.raises(ValueError, match="f must return an array of shape"):
        expect_gaussian(lambda z: np.sum(z), mean, L)
    with pytest.raises(ValueError, match="order must be >= 2"):
        expect_gaussian(lambda z: z[:, 0], mean, L, order=1)


def test_log_expect_gaussian_survives_underflow():
    # log E exp(-1000 - z^2 / 2), z ~ N(0, 1): -1000 + log(1 / sqrt(2))
    result = log_expect_gaussian(lambda z: -1000.0 - 0.5 * z[:, 0] ** 2, [0.0], [[1.0]])
    assert abs(result.value - (-1000.0 - 0.5 * np.log(2.0))) <= 1e-12 * 1000
    assert result.error <= 1e-12


def test_log_expect_gaussian_matches_expect_gaussian():
    mean, L = make_gaussian(3, seed=5)
    a = np.array([0.3, -0.2, 0.1])
    direct = expect_gaussian(lambda z: np.exp(z @ a), mean, L)
    logged = log_expect_gaussian(lambda z: z @ a, mean, L)
    assert abs(logged.value - np.log(direct.value)) <= 1e-12


def gaussian_logpdf_2d(mean, Sigma):
    dist = stats.multivariate_normal(mean, Sigma)
    return lambda z: dist.logpdf(z).reshape(-1)


def test_integrate_gaussian_density_far_from_origin_1d():
    pdf = lambda z: stats.norm.pdf(z[:, 0], loc=40.0, scale=0.3)  # noqa: E731
    result = integrate(pdf, 1, center=40.0, scale=0.3)
    assert abs(result.value - 1) <= 1e-10
    assert result.error <= 1e-10


def test_integrate_gaussian_density_far_from_origin_2d():
    mean = np.array([30.0, -50.0])
    Sigma = np.array([[0.25, 0.3], [0.3, 4.0]])
    logpdf = gaussian_logpdf_2d(mean, Sigma)
    result = integrate(
        lambda z: np.exp(logpdf(z)), 2, center=mean, scale=np.sqrt(np.diag(Sigma))
    )
    assert abs(result.value - 1) <= 1e-10
    assert result.error <= 1e-9


def test_integrate_odd_integrand_cancels_to_zero():
    logpdf = gaussian_logpdf_2d(np.zeros(2), np.eye(2))
    result = integrate(lambda z: z[:, 1] * np.exp(logpdf(z)), 2)
    assert abs(result.value) <= 1e-10


def test_integrate_agrees_with_gauss_hermite():
    # int f(z) N(z; mean, Sigma) dz, two independent routes
    mean, L = make_gaussian(2, seed=7)
    Sigma = L @ L.T
    logpdf = gaussian_logpdf_2d(mean, Sigma)

    def f_times_pdf(z):  # cos(z_1) exp(0.2 z_2) N(z; mean, Sigma), no inf * 0
        return np.cos(z[:, 0]) * np.exp(0.2 * z[:, 1] + logpdf(z))

    adaptive = integrate(f_times_pdf, 2, center=mean, scale=np.diag(L))
    gauss_hermite = expect_gaussian(
        lambda z: np.cos(z[:, 0]) * np.exp(0.2 * z[:, 1]), mean, L
    )
    assert abs(adaptive.value - gauss_hermite.value) <= 1e-10 * abs(gauss_hermite.value)


def test_integrate_validates_arguments():
    f = lambda z: np.exp(-np.sum(z**2, axis=1))  # noqa: E731
    with pytest.raises(ValueError, match="d must be 1 or 2"):
        integrate(f, 3)
    with pytest.raises(ValueError, match="scale must be positive"):
        integrate(f, 2, scale=[1.0, -1.0])
    with pytest.raises(ValueError, match=r"center must have shape \(2,\)"):
        integrate(f, 2, center=[1.0, 2.0, 3.0])


def test_expect_discrete_is_the_exact_sum():
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    f = lambda k: np.stack([k**2, np.sin(k)], axis=1)  # noqa: E731
    result = expect_discrete(f, probs)
    exact = sum(p * np.array([k**2, np.sin(k)]) for k, p in enumerate(probs))
    np.testing.assert_allclose(result.value, exact, rtol=1e-15)
    np.testing.assert_array_equal(result.error, 0.0)


def test_expect_discrete_batched_rows():
    probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    result = expect_discrete(lambda k: k.astype(float), probs)
    np.testing.assert_allclose(result.value, [0.5, 1.3], rtol=1e-15)
    assert result.error.shape == (2,)


def test_expect_discrete_validates_probs():
    with pytest.raises(ValueError, match="probs must sum to 1"):
        expect_discrete(lambda k: k, [0.5, 0.6])
    with pytest.raises(ValueError, match="probs must be non-negative"):
        expect_discrete(lambda k: k, [1.5, -0.5])
    with pytest.raises(ValueError, match=r"f must return an array of shape"):
        expect_discrete(lambda k: 1.0, [0.5, 0.5])
