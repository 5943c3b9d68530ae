"""The amortized setting's operators with error control (E_enc_X, E_agg,
kl_agg, E_eps) refine under their error estimate: checked against a finer
rule, and shown undetermined (an infinite error) when the budget is spent."""

import numpy as np

from refvi.checker.instances import make_instance
from refvi.checker.measured import refinement_target
from refvi.checker.namespace import GaussianRule
from refvi.checker.settings import amortized

#: An instance whose order-60 rule for E_enc_X(log q(z) - log p(z)) differs
#: from the order-40 rule by 7e-9 (and from order 135 by 1e-10).
HARD_SEED = 8


def _kl_integrand(names):
    return names["log_agg_X"] - names["log_prior_X"]


def test_encoder_expectations_refine_below_the_target_and_agree_with_a_finer_rule():
    names = make_instance("amortized", (), HARD_SEED).names
    f = _kl_integrand(names)
    with refinement_target(1e-9):
        per_datum = names["E_enc_X"](f)
        agg = names["E_agg"](f)
    assert np.all(per_datum.error <= 1e-9 * np.maximum(1.0, np.abs(per_datum.value)))
    # an independent finer rule (order 200) agrees within the estimate
    means = names["X"] @ names["A"].T + names["c"]
    L = np.broadcast_to(np.diag(np.exp(names["log_std"])), (len(means), 2, 2))
    finer = GaussianRule(means, L, 200).expect(f)
    assert np.all(np.abs(per_datum.value - finer) <= per_datum.error + 1e-14)
    assert abs(agg.value - np.mean(finer)) <= agg.error + 1e-14
    # kl_agg (the library's sum, refined at construction) is the same integral
    kl = names["kl_agg"]
    assert abs(kl.value - np.mean(finer)) <= kl.error + 1e-14 and kl.error <= 1e-10


def test_a_spent_budget_gives_an_infinite_error(monkeypatch):
    names = make_instance("amortized", (), HARD_SEED).names
    monkeypatch.setattr(amortized, "MAX_NODES_ENC", 60**2)  # no order above 60
    with refinement_target(1e-9):
        out = names["E_enc_X"](_kl_integrand(names))
    assert np.any(np.isinf(out.error))  # the judge says undetermined


def test_eps_expectation_of_a_polynomial_needs_no_refinement():
    """E_eps of an estimator (a polynomial of degree <= 4 in eps) is exact at
    the first order: the estimate is rounding, and it equals the closed form."""
    names = make_instance("amortized", (), 0).names
    with refinement_target(1e-10):
        out = names["E_eps"](names["f_kl"])
    assert np.all(out.error <= 1e-12)
    assert np.allclose(out.value, names["elbo"], rtol=1e-12, atol=1e-12)
