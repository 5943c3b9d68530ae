"""SciPy against refvi's reference cases: multivariate_normal logpdf and
entropy, and scipy.stats.entropy(pk, qk) as a categorical KL. scipy takes a
covariance (not a Cholesky factor) and probabilities (not logits). Each test
prints its worst error."""

import numpy as np
import pytest
from scipy import special, stats

from refvi.crosscheck import compare


def check(fn, name, **kw):
    report = compare(fn, name, **kw)
    print(report)
    assert report.passed, str(report)
    return report


def logpdf(mean, scale_tril, x):
    return {
        "value": stats.multivariate_normal(mean, scale_tril @ scale_tril.T).logpdf(x)
    }


def test_multivariate_normal_logpdf():
    check(logpdf, "gaussian.log_prob.ordinary", outputs=["value"])


def test_multivariate_normal_refuses_condition_1e10_and_is_exact_far_away():
    """scipy factorises the covariance by eigendecomposition and treats
    eigenvalues below its cut-off as zero: at condition 1e10 it refuses the
    covariance as singular (refvi's Cholesky accepts it). It shifts before it
    whitens, so 1e8 sigma from the origin it holds the tolerance."""
    with pytest.raises(np.linalg.LinAlgError, match="positive definite"):
        compare(logpdf, "gaussian.log_prob.cond-1e10", outputs=["value"])
    check(logpdf, "gaussian.log_prob.offset-1e8", outputs=["value"])


def test_multivariate_normal_entropy():
    def entropy(mean, scale_tril):
        return {
            "value": [
                stats.multivariate_normal(m, L @ L.T).entropy()
                for m, L in zip(mean, scale_tril, strict=True)
            ]
        }

    check(entropy, "gaussian.entropy.ordinary", outputs=["value"])


def test_scipy_entropy_of_two_distributions_is_kl_with_the_expectation_first():
    """stats.entropy(pk, qk) = KL(pk || qk) = refvi's categorical.kl(q, p) with
    q = pk: the expectation under the first argument in both."""

    def kl(logits_q, logits_p):
        q, p = special.softmax(logits_q, -1), special.softmax(logits_p, -1)
        return {"value": stats.entropy(q, p, axis=-1)}

    check(kl, "categorical.kl.ordinary", outputs=["value"])

    def reversed_kl(logits_q, logits_p):
        return kl(logits_p, logits_q)

    assert not compare(reversed_kl, "categorical.kl.ordinary", outputs=["value"]).passed
