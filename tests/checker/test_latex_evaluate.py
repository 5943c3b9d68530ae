"""Evaluation in signed log space on model instances
(refvi.checker.latex.evaluate, .models): each value against a closed form."""

import numpy as np
import pytest
from scipy.special import logsumexp

from refvi.checker.latex import ir
from refvi.checker.latex.evaluate import Evaluator, Shorthands, real, resolve
from refvi.checker.latex.models import make_model
from refvi.checker.latex.parser import parse_equation
from refvi.checker.latex.tokens import tokenize
from refvi.models import linear_gaussian as lg
from refvi.models import mixture_prior as mp


def value(latex, model, sh=None, level=0):
    sh = Shorthands() if sh is None else sh
    node = parse_equation(tokenize(latex)).exprs[0]
    free_z = "z" in ir.infer(node).free
    return Evaluator(model, sh, level).value(node, free_z)


def rel(a, b):
    return np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))


@pytest.mark.parametrize("setting", ["linear_gaussian", "mixture_prior", "mixture"])
def test_kl_and_elbo_match_the_settings_closed_forms(setting):
    # closed forms (linear_gaussian, mixture) or the model module's own
    # Gauss-Hermite route (mixture_prior) against the trapezoid rule here
    m = make_model(setting, 1)
    kl = real(value(r"D_{KL}(q(z|x) \| p(z|x))", m)).ravel()
    elbo = real(value(r"\mathrm{ELBO}", m)).ravel()
    assert rel(kl, m.names["kl"]) <= 1e-10
    assert rel(elbo, m.names["elbo"]) <= 1e-10


def test_densities_at_other_x_match_the_model_module():
    m = make_model("aggregated_mixture_prior", 0)
    X = m.x[::-1][:, None, None, :] + 0.3  # not the data: computed from parameters
    Z = m.z_points()
    lik = m.log_density("lik", X, Z)
    for i in range(m.x.shape[0]):
        want = lg.log_lik(m.lik, X[i, 0, 0], Z[i, 0])
        assert rel(lik[i, 0], want) <= 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_marginal_by_quadrature_matches_mixture_prior_closed_form(seed):
    m = make_model("mixture_prior", seed)
    v = value(r"\log \int p(x|z) p(z) dz", m)
    assert rel(real(v).ravel(), mp.log_marginal(m.model, m.x)) <= 1e-10


def test_discrete_elbo_matches_direct_sum():
    m = make_model("mixture", 0)
    v = real(value(r"\mathrm{ELBO}", m)).ravel()
    labels = np.broadcast_to(np.arange(m.K), (m.x.shape[0], m.K))
    log_q, log_joint = m.names["log_q"](labels), m.names["log_joint"](labels)
    direct = np.sum(np.exp(log_q) * (log_joint - log_q), axis=1)
    assert rel(v, direct) <= 1e-12


@pytest.mark.parametrize("setting", ["aggregated", "aggregated_mixture_prior"])
def test_aggregated_posterior_closed_form_matches_quadrature_over_x(setting):
    m = make_model(setting, 0)
    sh = Shorthands(q_z="aggregate", p_x="data")
    closed = value(r"q(z)", m, sh)[0]
    quad = value(r"\int q(z|x) p(x) dx", m, sh)[0]
    assert np.max(np.abs(closed - quad)) <= 1e-10  # log densities
    assert abs(real(value(r"\int p_{data}(x) dx", m, sh)).item() - 1) <= 1e-10


def test_quadrature_error_estimate_is_small_and_nonzero_for_the_mixture_prior():
    m = make_model("mixture_prior", 0)
    hi = real(value(r"D_{KL}(q \| p(z|x))", m))
    lo = real(value(r"D_{KL}(q \| p(z|x))", m, level=1))
    assert 0 < np.max(np.abs(hi - lo)) < 1e-7


def test_signed_log_space_does_not_underflow():
    m = make_model("linear_gaussian", 0)
    v = real(value(r"\log 10^{-400} + 400 \log 10", m))
    assert np.all(np.abs(v) <= 1e-10)
    # a ratio of densities far in the tail: each below 1e-300, the log is finite
    la, s = value(r"\log \frac{p(z)}{p(z)^{2}}", m)
    assert np.all(np.isfinite(la)) and np.all(s != 0)


def test_negative_value_under_log_is_an_evaluation_error():
    from refvi.checker.latex.evaluate import EvaluationError

    m = make_model("linear_gaussian", 0)
    with pytest.raises(EvaluationError, match="log of a value that is not positive"):
        value(r"\log (0 - 1)", m)


def test_resolve_follows_the_shorthands():
    qz = ir.Density("q", ("z",), ())
    px = ir.Density("p", ("x",), ())
    assert resolve(qz, Shorthands()) == "q"
    assert resolve(qz, Shorthands(q_z="aggregate")) == "agg"
    assert resolve(px, Shorthands()) == "marginal"
    assert resolve(px, Shorthands(p_x="data")) == "data"
    assert (
        resolve(ir.Density("p", ("x",), (), "theta"), Shorthands(p_x="data"))
        == "marginal"
    )
    with pytest.raises(ir.Unsupported, match="no density of the model is q"):
        resolve(ir.Density("q", ("x",), ("z",)), Shorthands())


def test_exact_q_variant_makes_the_kl_vanish():
    m = make_model("mixture_prior", 1, (), (("q", "exact"),))
    assert np.max(np.abs(real(value(r"D_{KL}(q \| p(z|x))", m)))) <= 1e-12


def test_well_specified_variant_recovers_the_prior():
    m = make_model("aggregated", 0, (), (("data", "model"),))
    sh = Shorthands(q_z="aggregate", p_x="data")
    a = value(r"\int p(z|x) p(x) dx", m, sh)[0]
    b = value(r"p(z)", m, sh)[0]
    assert np.max(np.abs(a - b)) <= 1e-10
    assert logsumexp(a) > -np.inf


@pytest.mark.parametrize("seed", range(3))
def test_mixture_pair_densities_integrate_to_one_and_mix_their_components(seed):
    """Each mixture of ``mixture_pair`` and each of its components integrates
    to 1 on the box rule; a mixture is the weighted sum of its components
    (logsumexp of the mixture module against the components one by one)."""
    model = make_model("mixture_pair", seed)
    X, logw = model.z_rule(0)
    for symbol in ("f", "g"):
        m = model.mix[symbol]
        total = logsumexp(model.log_mixture(symbol, None, X) + logw)
        assert abs(total) < 1e-10
        parts = [model.log_mixture(symbol, j, X) for j in range(len(m.weights))]
        for part in parts:
            assert abs(logsumexp(part + logw)) < 1e-10
        summed = sum(w * np.exp(p) for w, p in zip(m.weights, parts, strict=True))
        np.testing.assert_allclose(
            summed, np.exp(model.log_mixture(symbol, None, X)), rtol=1e-12, atol=0
        )
