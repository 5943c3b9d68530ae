"""Parser and typed intermediate form (refvi.checker.latex.parser, .ir)."""

import pytest

from refvi.checker.latex import ir
from refvi.checker.latex.parser import readings
from refvi.checker.latex.tokens import tokenize


def read(src, **kwargs):
    return readings(tokenize(src), **kwargs)


def one(src):
    (eq,) = read(src)
    return eq


def test_chain_of_relations_records_each_operator():
    eq = one(r"3 = \log p(x) \le 0 < 1 := 2")
    assert [r.op for r in eq.relations] == ["=", "\\le", "<", ":="]
    assert eq.relations[1].left is eq.exprs[1]


def test_density_atoms_with_decorations_and_given():
    eq = one(r"p_{\theta}(x \mid z) + q_\phi(z|x) + p(x, z) + p_{\mathrm{data}}(x) + q")
    terms = eq.exprs[0].terms
    assert terms[0] == ir.Density("p", ("x",), ("z",), "theta")
    assert terms[1] == ir.Density("q", ("z",), ("x",), "phi")
    assert terms[2] == ir.Density("p", ("x", "z"), (), "")
    assert terms[3] == ir.Density("p", ("x",), (), "data")
    assert terms[4] == ir.Density("q", None, (), "")


def test_binders_and_their_types():
    eq = one(r"\mathbb{E}_{z \sim q(z|x)}[\log p(x,z)] = \int q(z|x) \log p(x,z) dz")
    lhs, rhs = eq.exprs
    assert isinstance(lhs, ir.Expectation) and lhs.var == "z"
    assert isinstance(rhs, ir.Integral) and rhs.var == "z"
    assert str(ir.infer(lhs)) == "scalar of (x)"
    assert str(ir.infer(rhs.body)) == "scalar of (x, z)"
    assert ir.infer(ir.Log(ir.Density("p", ("z",), ()))).kind == "log-density"
    assert (
        ir.infer(
            ir.Div(ir.Density("p", ("x", "z"), ()), ir.Density("p", ("x",), ()))
        ).kind
        == "density"
    )


def test_kl_entropy_elbo_and_sum():
    eq = one(
        r"D_{KL}(q \| p(z|x)) = \mathrm{KL}[q(z|x) \| p(z)] + H[q]"
        r" - F_\theta(q_\phi) + \mathcal{L}"
    )
    kl, (kl2, h, f, elbo) = eq.exprs[0], eq.exprs[1].terms
    assert isinstance(kl, ir.KL) and kl.b == ir.Density("p", ("z",), ("x",))
    assert isinstance(kl2, ir.KL) and isinstance(h, ir.Entropy)
    assert f == ir.ELBO(ir.Density("q", None, (), "phi")) and elbo == ir.ELBO(None)
    s = one(r"\sum_k p(x|k) p(k)").exprs[0]
    assert s == ir.Sum(
        ir.Mul((ir.Density("p", ("x",), ("z",)), ir.Density("p", ("z",), ()))), "z", "k"
    )


def test_unbracketed_log_is_ambiguous_and_conventional_reading_comes_first():
    conv, other = read(r"\log p(x|z) p(z)")
    assert conv.exprs[0] == ir.Log(
        ir.Mul((ir.Density("p", ("x",), ("z",)), ir.Density("p", ("z",), ())))
    )
    assert other.exprs[0] == ir.Mul(
        (ir.Log(ir.Density("p", ("x",), ("z",))), ir.Density("p", ("z",), ()))
    )
    assert conv.reading == ("rest",) and other.reading == ("first",)
    assert conv.sites[0][1] == "log[(p(x|z) * p(z))]"
    first, _ = read(r"\log p(x|z) p(z)", prefer="first")
    assert first.reading == ("first",)


def test_bracketed_or_single_factor_log_is_not_ambiguous():
    assert len(read(r"\log \left( p(x|z) p(z) \right)")) == 1
    assert len(read(r"\log \frac{p(x,z)}{q(z|x)} + 1")) == 1
    assert len(read(r"\log p(x) \cdot 2")) == 1


def test_log_inside_an_integral_stops_at_the_differential():
    conv, other = read(r"\int q(z) \log p(x|z) p(z) dz")
    body = conv.exprs[0].body
    assert isinstance(body, ir.Mul) and isinstance(body.factors[1], ir.Log)
    assert isinstance(body.factors[1].arg, ir.Mul)


def test_a_fraction_after_log_is_its_argument_first():
    """``\\log \\frac{a}{b} c`` reads log(a/b) * c first: the fraction is a
    delimited group, as a bracket is; the other reading is still listed."""
    frac, rest = read(r"\int q(z) \log \frac{q(z)}{p(x,z)} p(x) dz")
    body = frac.exprs[0].body
    assert isinstance(body.factors[1], ir.Log)
    assert isinstance(body.factors[1].arg, ir.Div)
    assert body.factors[2] == ir.Density("p", ("x",), ())
    assert isinstance(rest.exprs[0].body.factors[1].arg, ir.Mul)


@pytest.mark.parametrize(
    "src, match",
    [
        (r"p(z) = \mathcal{N}(0, I)", "written with its variable"),
        (r"\nabla_x \log p(x)", r"a gradient is taken in \\theta or \\phi"),
        (r"p(x) \sim p(x|z)", "unsupported relation"),
        (r"p(y|z)", "'y' is not a declared variable"),
        (r"\int_0^1 p(z) dz", "limits"),
        (r"\int p(z)", "no differential"),
        (r"\mathbb{E}[p(z)]", "measure"),
        (r"D_{JS}(q \| p)", "D_{JS}"),
        (r"\int p(x) dz", "does not depend on the integration variable z"),
    ],
)
def test_unsupported_constructs_name_the_token(src, match):
    with pytest.raises(ir.Unsupported, match=match):
        for eq in read(src):
            for e in eq.exprs:
                ir.infer(e)


def test_unsupported_reports_the_line_of_the_token():
    with pytest.raises(ir.Unsupported) as info:
        readings(tokenize("1 =\n\\nabla_\\psi 2", line=7))
    assert info.value.line == 8


def test_declared_symbols_are_the_variables():
    (eq,) = readings(tokenize(r"p(u|w)"), variables=("w", "u"), latent="w")
    assert eq.exprs[0] == ir.Density("p", ("u",), ("w",))


def test_sums_and_products_over_the_data_and_the_data_set_letters():
    eq = one(r"\log p(X|\theta) = \sum_{i=1}^{N} \log p(x_i|\theta)")
    lhs, rhs = eq.exprs
    # in a line that sums over the data, p(X) is the product over the data
    assert lhs == ir.Log(ir.DataSum(ir.Density("p", ("x",), (), "", True), "i", True))
    assert rhs == ir.DataSum(ir.Log(ir.Density("p", ("x",), ())), "i")
    assert str(ir.infer(rhs)) == "log-density (constant)"
    mean = one(r"\frac{1}{N}\sum_n \log p(x_n) = \prod_{i=1}^N p(x^{(i)})").exprs
    assert mean[0] == ir.DataMean(ir.Log(ir.Density("p", ("x",), ())), "n")
    assert mean[1].product
    # a bound of the data set is the sum of the per-datum bounds
    bishop = one(r"\sum_i \log p(x_i) = \mathcal{L}(q, \theta)").exprs[1]
    assert bishop == ir.DataSum(ir.ELBO(ir.Density("q", None, ())), "i")


def test_a_datum_outside_the_sum_over_the_data_is_unsupported():
    with pytest.raises(ir.Unsupported, match="outside the sum over the data"):
        read(r"\sum_i \log p(x_i) = \log p(x)")


def test_the_parameters_of_an_em_step_and_bishops_q_function():
    eq = one(r"\ln p(X|\boldsymbol\theta^{(t+1)}) \ge \log p_{\theta^{old}}(x|z)")
    assert eq.exprs[0].arg.at == "new" and eq.exprs[1].arg.at == "old"
    assert one(r"\log p(x; \theta')").exprs[0].arg.at == "new"
    # the parameters at two values: Q and the bound are of the data set (sums)
    total = one(r"Q(\theta, \theta^{\text{old}})").exprs[0]
    assert isinstance(total, ir.DataSum) and not total.product
    q = total.body
    assert q.measure == ir.Density("p", ("z",), ("x",), "", True, "old")
    assert q.body == ir.Log(ir.Density("p", ("x", "z"), (), "", True, ""))
    assert one(r"\mathcal{L}(q, \theta^{(t)})").exprs[0].body.at == "old"
    # ... but a line about one datum x stays per datum
    assert isinstance(one(r"\log p(x|\theta') \ge \log p(x)").exprs[0], ir.Log)
    with pytest.raises(ir.Unsupported, match=r"theta at '\(t-1\)'"):
        read(r"\log p(x|\theta^{(t-1)})")


def test_abstract_functions_the_noise_and_the_reparameterized_latent():
    src = r"\mathbb{E}_{q}[f(z)] = \mathbb{E}_{p(\epsilon)}[f(\mu + \sigma \epsilon)]"
    lhs, rhs = one(src).exprs
    assert lhs.body == ir.Func("f", ir.Var("z"))
    assert rhs.var == ir.NOISE and rhs.body == ir.Func("f", ir.Reparam(diag=True))
    grad = one(r"\mathbb{E}_{p(\epsilon)}[\nabla_\phi f(g_\phi(\epsilon))]").exprs[0]
    assert grad.body == ir.Grad("phi", ir.Func("f", ir.Reparam()))


def test_the_optimal_factor_and_the_expectation_over_the_other_factors():
    lhs, rhs = one(r"q^*(z) \propto \exp(\mathbb{E}_{-z}[\log p(x, z)])").exprs
    assert lhs == ir.Density("q", ("z",), (), "opt")
    assert rhs == ir.Exp(ir.Log(ir.Density("p", ("x", "z"), ())))


def test_importance_weighted_bounds_of_k_samples():
    eq = one(r"\mathcal{L}_K \le \mathcal{L}_{K+1} \le \mathcal{L}_1 = \mathcal{L}_3")
    k = ir.SampleCount()
    assert eq.exprs[0] == ir.IWBound(k)
    assert eq.exprs[1] == ir.IWBound(ir.Add((k, ir.Number(1.0)), (1, 1)))
    assert eq.exprs[2] == ir.ELBO(None) and eq.exprs[3] == ir.IWBound(ir.Number(3.0))
    src = (r"\mathbb{E}_{z_1, \dots, z_K \sim q(z|x)}\left[\log \frac{1}{K}"
           r"\sum_{k=1}^{K} \frac{p(x, z_k)}{q(z_k|x)}\right]")  # fmt: skip
    bound = one(src).exprs[0]
    assert bound.count == k
    assert bound.weight == ir.Div(ir.Density("p", ("x", "z"), ()),
                                  ir.Density("q", ("z",), ("x",)))  # fmt: skip


def test_partial_derivatives_in_the_mean_and_scale_of_q():
    kl = ir.KL(ir.Density("q", ("z",), ("x",)), ir.Density("p", ("z",), ()))
    src = (
        r"\frac{\partial}{\partial \mu} \mathrm{KL}(q(z|x) \| p(z)) = "
        r"\frac{\partial \mathrm{KL}(q(z|x) \| p(z))}{\partial \sigma}"
    )
    eq = one(src)
    assert eq.exprs == (ir.Grad("mu", kl), ir.Grad("sigma", kl))
    with pytest.raises(ir.Unsupported, match="derivatives are taken in"):
        read(r"\frac{\partial}{\partial x} \log p(x)")


@pytest.mark.parametrize(
    "below, shown",
    [(r"\mu_k", r"\\mu_k"), (r"s_{p,j}", r"s_\{p,j\}"), (r"(A, c)", r"\(A,c\)")],
)
def test_a_derivative_in_an_unread_parameter_names_it(below, shown):
    """A subscripted or listed parameter no setting moves is named whole,
    with what derivatives are taken in (not a bare parse error)."""
    with pytest.raises(ir.Unsupported, match=f"a derivative in {shown}: derivatives"):
        read(r"\frac{\partial \log p(x)}{\partial " + below + "} = 0")


def test_the_data_set_defined_as_a_set_of_points_is_a_definition():
    eq = one(r"X = \{x_i\}_{i=1}^{N}")
    assert [r.op for r in eq.relations] == [":="]
