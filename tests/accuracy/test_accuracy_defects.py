"""One test per accuracy defect found against a 50-digit reference.

Each test failed on the code before its fix (the figure it saw is in the
test's docstring) and now holds to the stated tolerance.
"""

import warnings

import numpy as np
import pytest
from mpref import (
    EPS,
    lg_log_marginal_and_grad,
    lg_log_marginal_total,
    lg_total_condition,
    mixture_all,
    mixture_log_lik,
    perturbation_condition,
    rel_err,
)

from refvi import gaussian, mixture_kl
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lge
from refvi.models import mixture as gm
from refvi.models import mixture_em
from refvi.models.em import EMDecreaseWarning
from refvi.verify.gradcheck import taylor_test

TYPES = gm.COVARIANCE_TYPES
#: Tolerance of every comparison with the 50-digit reference below.
TOL = 1e-12


def _factor(ctype, scales, d):
    """The scale parameter (L or std) for each type with component standard
    deviations ``scales`` (K,)."""
    scales = np.asarray(scales, dtype=float)
    shape = np.tril(np.full((d, d), 0.3), -1) + np.diag(np.linspace(0.7, 1.1, d))
    if ctype == "full":
        return scales[:, None, None] * shape
    if ctype == "tied":
        return scales[0] * shape
    if ctype == "diag":
        return scales[:, None] * np.diag(shape)
    return 0.7 * scales


def _mixture(weights, means, scale, ctype):
    key = "L" if ctype in ("full", "tied") else "std"
    return gm.GaussianMixture(weights, means, covariance_type=ctype, **{key: scale})


def _hard_mixtures(ctype):
    """Tiny factor at mean (1, 1), and unit factors 1e8 sigma from the origin."""
    rng = np.random.default_rng(0)
    tiny = _mixture(
        [0.5, 0.5],
        [[1.0, 1.0], [1.0 + 3e-8, 1.0]],
        _factor(ctype, [1e-8, 1e-8], 2),
        ctype,
    )
    x_tiny = np.array([1.0, 1.0]) + 1e-8 * rng.normal(size=(5, 2))
    far = _mixture(
        [0.3, 0.7],
        [[1e8, -1e8], [1e8 + 2.0, -1e8]],
        _factor(ctype, [1.0, 1.0], 2),
        ctype,
    )
    x_far = np.array([1e8, -1e8]) + rng.normal(size=(5, 2))
    return [(tiny, x_tiny), (far, x_far)]


@pytest.mark.parametrize("ctype", TYPES)
def test_mixture_shifts_before_whitening(ctype):
    """log p, responsibilities, ELBO and gradients far from the origin in sigma.

    Before the fix (whitening as L^-1 x - L^-1 mu), measured on these cases:
    rel. error of log p up to 5.0e-9, responsibilities 6.2e-9, ELBO 7.5e-9,
    means gradient 2.9e-8, L gradient 6.2e-8; now within 1e-12.
    """
    for model, x in _hard_mixtures(ctype):
        q_logits = np.random.default_rng(1).normal(size=(x.shape[0], 2))
        ref = mixture_all(model, x, q_logits)
        assert rel_err(gm.log_marginal(model, x), ref["log_marginal"]) <= TOL
        assert rel_err(gm.log_responsibilities(model, x), ref["log_resp"]) <= TOL
        value, grads = gm.log_marginal_and_grad(model, x)
        for name in ("means", "L" if ctype in ("full", "tied") else "std"):
            assert rel_err(grads[name], ref[name]) <= TOL, name
        e, ge = gm.elbo_and_grad(model, x, q_logits)
        assert rel_err(e, ref["elbo"]) <= TOL
        assert rel_err(ge["q_logits"], ref["elbo_q_logits"]) <= TOL


@pytest.mark.parametrize("scale", [1e-8, 1e-12, 1e-30, 1e-160])
def test_kl_quadrature_tiny_covariance_matches_closed_form(scale):
    """KL between Gaussians of std s and 2 s at (1, 1) by quadrature = closed form.

    Before the fix: 1.3863 instead of 0.6363 for s = 1e-30 and below (every
    node mu + s u rounds to mu), rel. error 2e-5 at s = 1e-12.
    """
    q = gaussian.Gaussian([1.0, 1.0], scale_tril=scale * np.eye(2))
    p = gaussian.Gaussian([1.0, 1.0 + scale], scale_tril=2 * scale * np.eye(2))
    res = mixture_kl.kl_quadrature(q, p)
    assert rel_err(res.value, gaussian.kl(q, p)) <= 1e-12


def test_from_logits_keeps_tiny_weights():
    """from_logits([0, -1000]): log-weights exact, a datum at the second component.

    Before the fix: weights [1, 0], log p off by a factor of 4, ELBO -inf.
    """
    model = gm.GaussianMixture.from_logits(
        [0.0, -1000.0], [[0.0], [100.0]], np.ones((2, 1, 1))
    )
    np.testing.assert_array_equal(model.log_weights, [0.0, -1000.0])
    x = np.array([[100.0]])
    ref = mixture_all(model, x, np.zeros((1, 2)))
    assert rel_err(gm.log_marginal(model, x), ref["log_marginal"]) <= TOL
    e, g = gm.elbo_and_grad(model, x, np.zeros((1, 2)))
    assert rel_err(e, ref["elbo"]) <= TOL
    assert rel_err(g["q_logits"], ref["elbo_q_logits"]) <= TOL
    # a -inf logit is a zero weight, accepted
    zero = gm.GaussianMixture.from_logits(
        [0.0, -np.inf], [[0.0], [1.0]], covariance_type="spherical", std=np.ones(2)
    )
    assert zero.weights[1] == 0.0 and zero.log_weights[1] == -np.inf


@pytest.mark.parametrize("ctype", TYPES)
def test_zero_weight_log_lik_and_elbo_gradient(ctype):
    """A zero-weight component: log_lik is log N, ELBO gradients finite.

    Before the fix: log_lik NaN for that component (-inf - (-inf)), and
    elbo_and_grad NaN in q_logits when q puts zero mass on it.
    """
    model = _mixture(
        [1.0, 0.0], [[0.0, 0.0], [3.0, 1.0]], _factor(ctype, [1.0, 2.0], 2), ctype
    )
    x = np.array([[0.5, -0.2], [2.0, 1.0]])
    assert rel_err(gm.log_lik(model, x), mixture_log_lik(model, x)) <= TOL
    q_logits = np.array([[0.0, -800.0], [0.0, -800.0]])  # q_i2 underflows to 0
    value, grads = gm.elbo_and_grad(model, x, q_logits)
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    assert np.all(np.isfinite(value))


def _fa_instance():
    """d = 6, k = 2, loadings of size 30, three tiny noise variances."""
    rng = np.random.default_rng(3)
    W = 30.0 * rng.normal(size=(6, 2)) / np.sqrt(2.0)
    psi = np.array([1e-9, 1e-8, 1.0, 2.0, 0.5, 1e-7])
    model = lg.LinearGaussian(W, rng.normal(size=6), psi)
    z = rng.normal(size=(100, 2))
    x = model.mu + z @ W.T + rng.normal(size=(100, 6)) * np.sqrt(psi)
    return model, x


def test_log_marginal_total_matches_mpmath():
    """LG.19 from sufficient statistics vs 50 digits on an ill-conditioned FA.

    Before the fix: -1961.2 where the 50-digit value is -424.72 (rel. error
    3.6; the cancellation in tr(Psi^-1 Sigma_hat) - tr(S W^T Psi^-1 Sigma_hat
    Psi^-1 W)). The problem's own condition number w.r.t. Sigma_hat is
    kappa ~ 1e9 here, so the bound is a small multiple of kappa eps.
    """
    model, x = _fa_instance()
    stats = lge.sufficient_stats(x)
    want = lg_log_marginal_total(model, stats)
    kappa = lg_total_condition(model, stats)
    assert rel_err(lge.log_marginal_total(model, stats), want) <= 4 * kappa * EPS


def test_log_marginal_grad_tiny_psi_matches_mpmath():
    """W, mu and psi gradients (signed dout) with tiny psi_j vs 50 digits.

    Before the fix: W rel. error 9.5e-5 (8.6e-4 with dout = 1), psi 7.8e-7
    with dout = 1, mu 4.7e-7, where the condition number (perturbing every
    input by eps) allows about 2e-11.
    """
    model, x = _fa_instance()
    x = x[:20]
    for dout in (np.random.default_rng(4).normal(size=20), np.ones(20)):

        def reference(W, mu, psi, x, dout=dout):
            return lg_log_marginal_and_grad(lg.LinearGaussian(W, mu, psi), x, dout)[1]

        args = [np.array(model.W), np.array(model.mu), np.array(model.psi), x]
        kappa = perturbation_condition(reference, args, np.random.default_rng(0))
        want = reference(*args)
        _, got = lg.log_marginal_and_grad(model, x, dout)
        for name in ("W", "psi", "mu"):
            assert rel_err(got[name], want[name]) <= 8 * max(kappa[name], 1) * EPS, name


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_taylor_test_fails_on_non_finite_value(bad):
    """Before the fix: ok=True for a NaN or infinite value.

    A non-finite value or gradient at the point is refused (ValueError); a
    non-finite value at a small step gives ok=False.
    """
    with pytest.raises(ValueError, match="finite|NaN or inf"):
        taylor_test(
            lambda p: (bad, {"a": np.ones(2)}),
            {"a": np.ones(2)},
            np.random.default_rng(0),
        )
    with pytest.raises(ValueError, match="finite|NaN or inf"):
        taylor_test(
            lambda p: (float(np.sum(p["a"])), {"a": np.array([1.0, bad])}),
            {"a": np.ones(2)},
            np.random.default_rng(0),
        )

    def blows_up_near_p(p):
        step = float(np.max(np.abs(p["a"] - 1.0)))
        value = float(np.sum(p["a"] ** 2)) if step == 0 or step > 1e-3 else bad
        return value, {"a": 2.0 * p["a"]}

    res = taylor_test(blows_up_near_p, {"a": np.ones(2)}, np.random.default_rng(0))
    assert not res.ok


def test_reg_covar_dominating_the_data_warns():
    """Data in small units (scale 1e-4): reg_covar = 1e-6 swamps the variances.

    Before the fix: EM stopped after a few iterations with the means collapsed,
    silently.
    """
    rng = np.random.default_rng(5)
    x = 1e-4 * np.vstack([rng.normal(size=(50, 2)), 5 + rng.normal(size=(50, 2))])
    init = mixture_em.kmeans_plusplus_init(x, 2, "full", rng, reg_covar=0.0)
    # The floor also makes log p(x) go down (by up to 21% here; 0 decreases with
    # reg_covar = 0): its penalty is not part of log p(x), so EMDecreaseWarning
    # is the documented report of that, not rounding (the decrease test allows
    # DECREASE_EPS = 4096 eps relative, stated in refvi.models.em).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mixture_em.em(x, init, reg_covar=1e-6)
    kinds = {type(w.message) for w in caught}
    assert mixture_em.RegCovarWarning in kinds and EMDecreaseWarning in kinds
    with warnings.catch_warnings():
        warnings.simplefilter("error", mixture_em.RegCovarWarning)
        mixture_em.em(x * 1e4, init, reg_covar=1e-6, max_iter=2)
