"""The data of the aggregated-posterior figure: which encoders aggregate to
the prior over the model's own p(x)."""

import numpy as np

from refvi.figures import aggregate


def test_exact_and_collapsed_encoders_aggregate_to_the_prior_mean_field_does_not():
    by_name = {a.name: a for a in aggregate.data()}
    exact = by_name["exact posterior"]
    collapsed = by_name["collapsed: q(z|x) = p(z)"]
    mean_field = by_name["mean-field (diagonal S)"]
    for agg in (exact, collapsed):
        # closed forms: A C A^T + S = I exactly up to rounding (1e-12)
        np.testing.assert_allclose(agg.mean, 0.0, atol=1e-12)
        np.testing.assert_allclose(agg.cov, np.eye(2), atol=1e-12)
        assert abs(agg.kl_aggregate) < 1e-12
    # the collapsed encoder carries no information about x; the exact one does
    assert abs(collapsed.mutual_info) < 1e-12 and exact.mutual_info > 1.0
    # mean-field: the same mean map, a diagonal covariance; visibly not the prior
    assert mean_field.kl_aggregate > 0.05
    assert abs(mean_field.cov[0, 1]) > 0.3
    # surgery bounds the aggregate's KL by E_x KL(q(z|x) || p(z)) = I + KL >= KL
    assert mean_field.mutual_info > 0
