"""The em_* settings as the LaTeX checker sees them (refvi.checker.latex.
em_models): the rule over a continuous z against the setting's own
Gauss-Hermite expectations, and the parameter values an EM step names."""

import numpy as np
import pytest

from refvi.checker.latex import check_latex_text
from refvi.checker.latex.models import make_model


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_continuous_rule_matches_the_settings_gauss_hermite_expectations(seed):
    """E_post[log p(x, z) - log p(z|x)] and E_q[log q] by the trapezoid rule
    equal the setting's own E_post / E_q (Gauss-Hermite of order 12, exact
    for these quadratic integrands) to 1e-12 relative; both densities
    integrate to 1."""
    model = make_model("em_linear_gaussian", seed)
    names = model.names
    Z, logw = model.z_rule(0)
    X = model.x_data()
    post = model.log_density("post", X, Z)
    q = model.log_density("q", X, Z)
    joint = model.log_density("joint", X, Z)
    w_post, w_q = np.exp(logw + post)[:, 0], np.exp(logw + q)[:, 0]
    np.testing.assert_allclose(np.sum(w_post, axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.sum(w_q, axis=-1), 1.0, rtol=1e-12)
    ours = np.sum(w_post * (joint - post)[:, 0], axis=-1)
    theirs = names["E_post"](names["log_joint"] - names["log_post"])
    np.testing.assert_allclose(ours, theirs.value, rtol=1e-12)
    ours = np.sum(w_q * q[:, 0], axis=-1)
    theirs = names["E_q"](names["log_q"])
    np.testing.assert_allclose(ours, theirs.value, rtol=1e-12)


def test_theta_old_is_the_steps_start_and_theta_double_prime_exists_in_em_only():
    text = "---\nsettings: em_mixture\n---\n"
    text += "$$ F(q^*, \\theta^{old}) = \\log p_\\theta(X) $$\n\n"
    text += "$$ \\log p_{\\theta''}(X) \\ge F(\\hat q, \\theta'') $$\n"
    assert [r.status for r in check_latex_text(text).lines] == ["holds", "holds"]
    text = "---\nsettings: mixture\n---\n"
    text += "$$ \\log p_{\\theta''}(X) \\ge F(q, \\theta'') $$\n"
    (r,) = check_latex_text(text).lines
    assert r.status == "unsupported" and "em_* settings only" in r.reason
