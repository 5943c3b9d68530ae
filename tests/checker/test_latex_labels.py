"""Component notation of a discrete latent (refvi.checker.latex.labels): how
p(z = k), pi_k, r_{ik}, N_k, mu_k, softmax, logsumexp and sum_{ik} are read.
Their values are checked, and planted errors caught, in the hand-made corpus
(latex_corpus/mixture_components.md)."""

import pytest

from refvi.checker.latex import check_latex_text, ir
from refvi.checker.latex.parser import readings
from refvi.checker.latex.tokens import tokenize


def one(src):
    (eq,) = readings(tokenize(src))
    return eq


def test_the_value_k_of_the_latent_is_the_latent():
    p_z = ir.Density("p", ("z",), ())
    post = ir.Density("p", ("z",), ("x",))
    lhs, pi, soft = one(r"p(z = k) = \pi_k = \operatorname{softmax}(\eta)_k").exprs
    assert lhs == p_z and pi == p_z and soft == ir.Softmax(ir.LabelParam("eta"))
    assert one(r"r_{ik} = \gamma(z_{ik})").exprs == (post, post)
    (n_k,) = one(r"N_k").exprs
    assert n_k == ir.DataSum(post, "i")
    mu, sigma = one(r"\mu_k^{new} = \Sigma_k").exprs
    assert mu == ir.LabelParam("mu", "new") and sigma == ir.LabelParam("Sigma", "old")


def test_a_double_sum_is_over_the_data_and_the_latent():
    (total, _) = one(r"\sum_{ik} r_{ik} = n").exprs
    assert isinstance(total, ir.DataSum)
    assert total.body == ir.Sum(ir.Density("p", ("z",), ("x",)), "z", "k")
    assert one(r"N_k / n").exprs[0] == ir.Div(ir.DataSum(total.body.body, "i"),
                                             ir.DataCount())  # fmt: skip


def test_logsumexp_is_the_log_of_the_sum_of_exponentials():
    (lse,) = one(r"\operatorname{logsumexp}_k [\log \pi_k]").exprs
    p_z = ir.Density("p", ("z",), ())
    assert lse == ir.Log(ir.Sum(ir.Exp(ir.Log(p_z)), "z", "k"))


@pytest.mark.parametrize(
    "line",
    [r"\mu_k = \mu_k", r"\operatorname{softmax}(\eta)_k = \pi_k"],
)
def test_component_parameters_need_a_discrete_latent(line):
    text = f"---\nsettings: linear_gaussian\n---\n$$ {line} $$\n"
    (r,) = check_latex_text(text).lines
    assert r.status == "unsupported" and "discrete latent" in r.reason
