"""scikit-learn (test extra) against refvi's reference cases: GaussianMixture
of every covariance type (score_samples, predict_proba, one EM step from given
parameters), FactorAnalysis (score_samples, get_covariance for given
components and noise) and PCA's probabilistic score. Each test prints its
worst error; convention differences are asserted, not absorbed by a tolerance
(docs/conventions.md).
"""

import warnings

import numpy as np
import pytest
from scipy.linalg import solve_triangular

from refvi.crosscheck import compare, get_case
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lge
from refvi.models.mixture import COVARIANCE_TYPES

sklearn_mixture = pytest.importorskip("sklearn.mixture")
decomposition = pytest.importorskip("sklearn.decomposition")


def check(fn, name, **kw):
    report = compare(fn, name, **kw)
    print(report)
    assert report.passed, str(report)
    return report


def _sk_params(covariance_type, logits, means, L=None, std=None):
    """weights, means and scikit-learn's precisions_cholesky_ / precisions."""
    weights = np.exp(logits - np.logaddexp.reduce(logits))
    if covariance_type in ("full", "tied"):
        eye = np.eye(means.shape[1])
        # scikit-learn's precision Cholesky is L^{-T}: precision = P P^T
        if covariance_type == "full":
            P = np.stack([solve_triangular(Lk, eye, lower=True).T for Lk in L])
        else:
            P = solve_triangular(L, eye, lower=True).T
        precisions = P @ np.swapaxes(P, -1, -2)
    else:
        P = 1.0 / std
        precisions = P**2
    return weights, P, precisions


def _sk_mixture(covariance_type, logits, means, L=None, std=None, reg_covar=1e-6):
    weights, P, _ = _sk_params(covariance_type, logits, means, L, std)
    gm = sklearn_mixture.GaussianMixture(
        len(weights), covariance_type=covariance_type, reg_covar=reg_covar
    )
    gm.weights_, gm.means_, gm.precisions_cholesky_ = weights, means, P
    return gm


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_mixture_score_samples_and_predict_proba(covariance_type):
    def sk(covariance_type, logits, means, x, L=None, std=None):
        gm = _sk_mixture(covariance_type, logits, means, L, std)
        return {"value": gm.score_samples(x), "responsibilities": gm.predict_proba(x)}

    check(
        sk,
        f"mixture.log_marginal.{covariance_type}",
        outputs=["value", "responsibilities"],
    )


def test_gaussian_mixture_whitens_before_shifting_at_an_offset_of_1e8():
    """scikit-learn whitens x and the means separately (x P - mu P), which
    loses eps |mu| / sigma: at 1e8 sigma from the origin its log p(x) is off in
    the 8th digit. An accuracy difference, not a convention: reported."""

    def sk(covariance_type, logits, means, x, L=None, std=None):
        gm = _sk_mixture(covariance_type, logits, means, L, std)
        return {"value": gm.score_samples(x)}

    report = compare(sk, "mixture.log_marginal.full-offset-1e8", outputs=["value"])
    print(report)
    assert not report.passed and report.failures[0].rel_error > 1e-10


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_mixture_one_em_step_from_given_parameters(covariance_type):
    """fit(max_iter=1) from weights_init, means_init, precisions_init runs one
    E-step and one M-step (reg_covar added to the diagonal after the M-step,
    as refvi does). scikit-learn adds 10 eps to each N_k (a relative change of
    ~1e-16 / N_k, far below the tolerance)."""

    def sk(covariance_type, reg_covar, logits, means, x, L=None, std=None):
        weights, _, precisions = _sk_params(covariance_type, logits, means, L, std)
        gm = sklearn_mixture.GaussianMixture(
            len(weights),
            covariance_type=covariance_type,
            reg_covar=reg_covar,
            max_iter=1,
            tol=0.0,
            weights_init=weights,
            means_init=means,
            precisions_init=precisions,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning after 1 step
            gm.fit(x)
        return {
            "weights": gm.weights_,
            "means": gm.means_,
            "covariances": gm.covariances_,
        }

    check(
        sk,
        f"mixture.em_step.{covariance_type}",
        outputs=["weights", "means", "covariances"],
    )


def test_gaussian_mixture_lower_bound_is_before_the_last_m_step():
    """After fit(max_iter=1) lower_bound_ is the mean log p(x) of the INITIAL
    parameters (computed in the E-step, before the M-step), not of the fitted
    ones; score(x) is the mean of score_samples(x)."""
    case = get_case("mixture.em_step.full")
    i = case.inputs
    before = get_case("mixture.em_step.full")
    weights, _, precisions = _sk_params("full", i["logits"], i["means"], i["L"])
    gm = sklearn_mixture.GaussianMixture(
        3,
        covariance_type="full",
        reg_covar=1e-6,
        max_iter=1,
        tol=0.0,
        weights_init=weights,
        means_init=i["means"],
        precisions_init=precisions,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(i["x"])
    from refvi.crosscheck import evaluate

    initial = evaluate(
        "mixture.log_marginal",
        {k: i[k] for k in ("logits", "means", "L", "x")},
        {"covariance_type": "full"},
    )["value"]
    assert gm.lower_bound_ == pytest.approx(initial.mean(), rel=1e-12)
    assert gm.score(i["x"]) == pytest.approx(gm.score_samples(i["x"]).mean(), rel=1e-14)
    assert abs(gm.score(i["x"]) - gm.lower_bound_) > 1e-3  # the step moved it
    assert before is case


def _fa(W, mu, psi):
    fa = decomposition.FactorAnalysis(n_components=W.shape[1])
    fa.components_, fa.noise_variance_, fa.mean_ = W.T, psi, mu  # components_ = W^T
    return fa


@pytest.mark.parametrize("variant", ["ordinary", "psi-1e-10"])
def test_factor_analysis_score_samples_and_get_covariance(variant):
    def sk(W, mu, psi, x):
        fa = _fa(W, mu, psi)
        return {"value": fa.score_samples(x), "cov": fa.get_covariance()}

    name = f"linear_gaussian.log_marginal.{variant}"
    if variant == "ordinary":
        check(sk, name, outputs=["value", "cov"])
    else:
        # noise variances 1e-10 .. 1: scikit-learn's log p(x) goes through the
        # precision C^{-1} by the Woodbury identity with 1/psi and loses all but
        # the first digit (refvi is within 1 eps of 50-digit mpmath here,
        # docs/accuracy.md); its covariance is exact
        report = compare(sk, name, outputs=["value", "cov"])
        print(report)
        assert [o.name for o in report.failures] == ["value"]
        assert report.failures[0].rel_error > 0.1


def test_factor_analysis_components_are_w_transposed():
    case = get_case("linear_gaussian.log_marginal.ordinary")
    i = case.inputs
    fa = _fa(i["W"], i["mu"], i["psi"])
    fa.components_ = i["W"]  # Bishop's orientation where sklearn expects W^T
    with pytest.raises(ValueError):
        fa.score_samples(i["x"])


def test_pca_score_is_the_ppca_log_likelihood_with_n_minus_1_variances():
    """PCA's score_samples is log N(x; mean_, W W^T + sigma2 I) with
    W = components_^T sqrt(explained_variance_ - noise_variance_) and sigma2 =
    noise_variance_; score is its mean. explained_variance_ divides by n - 1,
    so sigma2 is n / (n - 1) times the Tipping-Bishop MLE (refvi's ppca_mle)."""
    rng = np.random.default_rng(4)
    n, d, k = 200, 5, 2
    x = rng.normal(size=(n, k)) @ rng.normal(size=(k, d)) + 0.5 * rng.normal(
        size=(n, d)
    )
    pca = decomposition.PCA(n_components=k).fit(x)
    W = pca.components_.T * np.sqrt(pca.explained_variance_ - pca.noise_variance_)
    model = lg.LinearGaussian.ppca(W, pca.mean_, pca.noise_variance_)
    ref = lg.log_marginal(model, x)
    got = pca.score_samples(x)
    err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    print(f"PCA score_samples vs refvi log_marginal: worst relative error {err:.3g}")
    assert err <= 1e-12
    assert pca.score(x) == pytest.approx(ref.mean(), rel=1e-12)
    mle = lge.ppca_mle(x, k)
    assert pca.noise_variance_ == pytest.approx(mle.psi[0] * n / (n - 1), rel=1e-10)
