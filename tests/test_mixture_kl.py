"""KL divergences involving Gaussian mixtures: quadrature, Monte Carlo, bounds.

Routes: Gauss-Hermite quadrature (d <= 3) against Monte Carlo within 5
standard errors; both against the Gaussian closed form (refvi.gaussian.kl)
when each side has one component; the bounds against the quadrature value on
random instances; KL(p || p) = 0.
"""

import numpy as np
import pytest

from refvi import gaussian
from refvi.gaussian import Gaussian
from refvi.mixture_kl import (
    KLBounds,
    kl_bounds,
    kl_montecarlo,
    kl_quadrature,
    kl_variational,
    kl_variational_upper_bound,
)
from refvi.models.mixture import GaussianMixture
from refvi.verify.montecarlo import assert_z_test, z_test


def random_L(rng, *shape):
    """Lower-triangular factors with a positive diagonal, shape (*shape, d, d)."""
    d = shape[-1]
    A = np.tril(0.4 * rng.standard_normal(shape + (d,)), k=-1)
    return A + rng.uniform(0.5, 1.3, size=shape)[..., None] * np.eye(d)


def random_gaussian(rng, d):
    return Gaussian(rng.standard_normal(d), scale_tril=random_L(rng, d))


def random_mixture(rng, K, d, spread=1.5):
    weights = rng.dirichlet(np.full(K, 2.0))
    return GaussianMixture(
        weights, spread * rng.standard_normal((K, d)), random_L(rng, K, d)
    )


def random_pair(rng, kind, d):
    """(p, q) for kind in {"N||mix", "mix||N", "mix||mix"}."""
    if kind == "N||mix":
        return random_gaussian(rng, d), random_mixture(rng, 3, d)
    if kind == "mix||N":
        return random_mixture(rng, 3, d), random_gaussian(rng, d)
    return random_mixture(rng, 3, d), random_mixture(rng, 2, d)


KINDS = ["N||mix", "mix||N", "mix||mix"]


def one_component(g):
    return GaussianMixture([1.0], g.mean[None, :], g.scale_tril[None, :, :])


# ---------------------------------------------------------------------------
# Reductions and identities.


@pytest.mark.parametrize("d", [1, 2, 3])
def test_one_component_mixtures_reduce_to_the_gaussian_closed_form(d):
    """Quadrature, D_var, D_varUB = refvi.gaussian.kl to 1e-10; MC within 5 s.e."""
    rng = np.random.default_rng(d)
    p, q = random_gaussian(rng, d), random_gaussian(rng, d)
    exact = gaussian.kl(p, q)
    for pp, qq in [(p, q), (one_component(p), one_component(q)), (p, one_component(q))]:
        quad = kl_quadrature(pp, qq)
        assert abs(quad.value - exact) <= 1e-10 * exact
        assert quad.error <= 1e-10 * exact
        assert abs(kl_variational(pp, qq) - exact) <= 1e-10 * exact
        assert abs(kl_variational_upper_bound(pp, qq) - exact) <= 1e-10 * exact
    assert_z_test(kl_montecarlo(p, q, rng, 20_000), exact)


def test_diagonal_gaussians_are_accepted():
    rng = np.random.default_rng(4)
    p = Gaussian(rng.standard_normal(2), log_std=0.3 * rng.standard_normal(2))
    q = Gaussian(rng.standard_normal(2), log_std=0.3 * rng.standard_normal(2))
    exact = gaussian.kl(p, q)
    assert abs(kl_quadrature(p, q).value - exact) <= 1e-10 * exact
    assert abs(kl_variational(p, q) - exact) <= 1e-10 * exact


@pytest.mark.parametrize("kind", ["N", "mix"])
def test_kl_of_a_distribution_to_itself_is_zero(kind):
    rng = np.random.default_rng(5)
    p = random_gaussian(rng, 2) if kind == "N" else random_mixture(rng, 3, 2)
    assert kl_quadrature(p, p) == (0.0, 0.0)
    assert kl_variational(p, p) == 0.0
    mc = kl_montecarlo(p, p, rng, 100)
    assert (mc.mean, mc.se) == (0.0, 0.0)
    lower, upper = kl_bounds(p, p)
    assert lower <= 0.0 <= upper
    assert abs(kl_variational_upper_bound(p, p)) <= 1e-12  # phi = psi is reachable


def test_other_covariance_types_and_zero_weights_give_the_full_result():
    """A diag / spherical / tied mixture equals its full-covariance twin; a
    zero-weight component changes nothing."""
    rng = np.random.default_rng(6)
    q = random_mixture(rng, 2, 2)
    means, var = rng.standard_normal((3, 2)), rng.uniform(0.5, 2.0, size=(3, 2))
    w = np.array([0.2, 0.3, 0.5])
    pairs = [
        (
            GaussianMixture.from_covariances(w, means, var, "diag"),
            GaussianMixture.from_covariances(w, means, var[:, :, None] * np.eye(2)),
        ),
        (
            GaussianMixture.from_covariances(w, means, var[:, 0], "spherical"),
            GaussianMixture(w, means, np.sqrt(var[:, 0])[:, None, None] * np.eye(2)),
        ),
        (
            GaussianMixture(w, means, random_L(rng, 2), "tied"),
            None,
        ),
    ]
    tied = pairs[2][0]
    pairs[2] = (tied, GaussianMixture(w, means, np.broadcast_to(tied.L, (3, 2, 2))))
    for p_typed, p_full in pairs:
        for fn in (kl_variational, kl_variational_upper_bound):
            assert abs(fn(p_typed, q) - fn(p_full, q)) <= 1e-12 * abs(fn(p_full, q))
        a, b = kl_quadrature(p_typed, q).value, kl_quadrature(p_full, q).value
        assert abs(a - b) <= 1e-12 * abs(b)
    padded = GaussianMixture(
        np.append(q.weights, 0.0),
        np.vstack([q.means, [50.0, 50.0]]),
        np.concatenate([q.L, np.eye(2)[None]]),
    )
    p = pairs[0][1]
    assert kl_quadrature(p, padded) == kl_quadrature(p, q)
    assert kl_variational_upper_bound(padded, p) == kl_variational_upper_bound(q, p)
    assert kl_bounds(p, padded) == kl_bounds(p, q)


# ---------------------------------------------------------------------------
# Quadrature against Monte Carlo.


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_quadrature_and_montecarlo_agree_within_5_standard_errors(kind, d):
    rng = np.random.default_rng(10 * d + KINDS.index(kind))
    p, q = random_pair(rng, kind, d)
    quad = kl_quadrature(p, q)
    mc = kl_montecarlo(p, q, rng, 20_000)
    assert quad.error <= 1e-2 * mc.se  # quadrature error negligible next to MC's
    assert_z_test(mc, quad.value)


def test_the_z_test_rejects_a_wrong_kl():
    """The Monte Carlo check fails for the KL to a slightly different q."""
    rng = np.random.default_rng(20)
    p, q = random_pair(rng, "mix||mix", 2)
    q_wrong = GaussianMixture(q.weights, q.means + 0.1, q.L)
    mc = kl_montecarlo(p, q, rng, 50_000)
    assert z_test(mc, kl_quadrature(p, q).value).ok
    assert not z_test(mc, kl_quadrature(p, q_wrong).value).ok


def test_quadrature_error_estimate_is_honest():
    """The returned error bounds the distance to a much finer rule."""
    rng = np.random.default_rng(21)
    for kind in KINDS:
        p, q = random_pair(rng, kind, 2)
        coarse, fine = kl_quadrature(p, q, order=12), kl_quadrature(p, q, order=60)
        assert abs(coarse.value - fine.value) <= coarse.error + fine.error
        assert fine.error < coarse.error


def test_montecarlo_in_five_dimensions_and_reproducibility():
    """Any d: one component gives the closed form; a mixture lies within the bounds."""
    rng = np.random.default_rng(22)
    p, q = random_gaussian(rng, 5), random_gaussian(rng, 5)
    assert_z_test(kl_montecarlo(p, one_component(q), rng, 20_000), gaussian.kl(p, q))
    p, q = random_pair(rng, "mix||mix", 5)
    mc = kl_montecarlo(p, q, np.random.default_rng(3), 20_000)
    assert mc == kl_montecarlo(p, q, np.random.default_rng(3), 20_000)
    lower, upper = kl_bounds(p, q)
    assert lower - 5 * mc.se <= mc.mean <= upper + 5 * mc.se
    assert mc.mean <= kl_variational_upper_bound(p, q) + 5 * mc.se


# ---------------------------------------------------------------------------
# Bounds and the variational approximation.


@pytest.fixture(scope="module")
def instances():
    """30 random (p, q, KL by quadrature): every kind, d = 1, 2, 3."""
    rng = np.random.default_rng(30)
    out = []
    for i in range(30):
        d = 1 + i % 3
        p, q = random_pair(rng, KINDS[(i // 3) % 3], d)
        out.append((p, q, kl_quadrature(p, q, order={1: 40, 2: 24, 3: 12}[d])))
    return out


def test_bounds_hold_on_random_instances(instances):
    """D_lower <= KL <= D_varUB (every iterate), KL <= D_upper; KL by quadrature."""
    for p, q, quad in instances:
        kl, err = quad.value, quad.error + 1e-12
        lower, upper = kl_bounds(p, q)
        assert lower <= kl + err
        assert upper >= kl - err
        previous = np.inf
        for n_iter in (0, 1, 2, 5, 20):
            ub = kl_variational_upper_bound(p, q, n_iter=n_iter)
            assert kl - err <= ub <= previous + 1e-12  # a bound, decreasing
            previous = ub


def test_variational_approximation_is_not_a_bound(instances):
    """D_var falls on both sides of the quadrature KL over random instances,
    so it is neither a lower nor an upper bound (derivations/mixture_kl.md MK.10)."""
    signs = {
        np.sign(kl_variational(p, q) - quad.value)
        for p, q, quad in instances
        if abs(kl_variational(p, q) - quad.value) > 10 * quad.error
    }
    assert signs == {-1.0, 1.0}


def test_bound_checks_reject_a_wrong_bound(instances):
    """The bound checks fail when a bound is given the wrong sign convention:
    the lower and upper bounds swapped, or D_var taken for an upper bound."""
    violations_swapped, violations_var = 0, 0
    for p, q, quad in instances:
        lower, upper = kl_bounds(p, q)
        violations_swapped += not (upper <= quad.value + quad.error)
        violations_var += kl_variational(p, q) < quad.value - quad.error
    assert violations_swapped > 0 and violations_var > 0


def test_variational_upper_bound_starts_at_the_convexity_bound():
    """With n_iter = 0, D_varUB = sum_ab pi_a w_b D(p_a || q_b)."""
    rng = np.random.default_rng(31)
    p, q = random_pair(rng, "mix||mix", 2)
    comps_p = [Gaussian(m, scale_tril=L) for m, L in zip(p.means, p.L, strict=True)]
    comps_q = [Gaussian(m, scale_tril=L) for m, L in zip(q.means, q.L, strict=True)]
    D = np.array([[gaussian.kl(a, b) for b in comps_q] for a in comps_p])
    expected = p.weights @ D @ q.weights
    got = kl_variational_upper_bound(p, q, n_iter=0)
    assert abs(got - expected) <= 1e-12 * expected


# ---------------------------------------------------------------------------
# Bad input.


def test_bad_input_raises_naming_the_argument():
    rng = np.random.default_rng(40)
    p2, q2 = random_mixture(rng, 2, 2), random_mixture(rng, 2, 2)
    with pytest.raises(TypeError, match="q must be a Gaussian or GaussianMixture"):
        kl_quadrature((np.zeros(2), np.eye(2)), q2)
    with pytest.raises(TypeError, match="p must be a Gaussian or GaussianMixture"):
        kl_variational(p2, "q")
    with pytest.raises(ValueError, match="p must have the dimension of q"):
        kl_bounds(p2, random_gaussian(rng, 3))
    batch = Gaussian(np.zeros((2, 2)), log_std=np.zeros(2))
    with pytest.raises(ValueError, match="p must be a single Gaussian"):
        kl_bounds(p2, batch)
    with pytest.raises(ValueError, match="q must have dimension <= 3"):
        kl_quadrature(random_gaussian(rng, 4), random_gaussian(rng, 4))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        kl_montecarlo(p2, q2, 0, 100)
    with pytest.raises(ValueError, match="n_samples must be >= 2"):
        kl_montecarlo(p2, q2, rng, 1)
    with pytest.raises(ValueError, match="n_iter must be >= 0"):
        kl_variational_upper_bound(p2, q2, n_iter=-1)
    with pytest.raises(ValueError, match="order must be >= 2"):
        kl_quadrature(p2, q2, order=1)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (
            lambda: GaussianMixture([0.5, 0.6], np.zeros((2, 1)), np.ones((2, 1, 1))),
            "weights must sum to one",
        ),
        (
            lambda: GaussianMixture([1.5, -0.5], np.zeros((2, 1)), np.ones((2, 1, 1))),
            "weights must be non-negative",
        ),
        (
            lambda: GaussianMixture.from_covariances(
                [0.5, 0.5], np.zeros((2, 2)), [np.eye(2), [[1.0, 2.0], [2.0, 1.0]]]
            ),
            r"covariances\[1\] must be positive definite",
        ),
        (
            lambda: GaussianMixture([1.0], [[np.nan, 0.0]], np.eye(2)[None]),
            "means contains NaN",
        ),
    ],
)
def test_invalid_mixtures_are_refused_before_any_kl(build, match):
    """The mixture type validates weights, covariances and data on construction."""
    with pytest.raises(ValueError, match=match):
        build()


def test_nothing_mutates_its_inputs():
    rng = np.random.default_rng(41)
    p, q = random_pair(rng, "mix||mix", 2)
    snapshot = [a.copy() for a in (p.weights, p.means, p.L, q.weights, q.means, q.L)]
    kl_quadrature(p, q, order=6)
    kl_montecarlo(p, q, rng, 10)
    kl_variational(p, q)
    kl_variational_upper_bound(p, q)
    assert isinstance(kl_bounds(p, q), KLBounds)
    after = (p.weights, p.means, p.L, q.weights, q.means, q.L)
    for a, b in zip(after, snapshot, strict=True):
        np.testing.assert_array_equal(a, b)
