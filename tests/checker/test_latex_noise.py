"""The reparameterization's noise and estimators with a hat, as read from
LaTeX (refvi.checker.latex.noise, .estimators): spellings, the forms that are
not read, and the determinism of the draws."""

import numpy as np

from refvi.checker.latex import estimators, ir, noise
from refvi.checker.latex.definitions import Definition
from refvi.checker.latex.parser import RELATIONS, Parser, readings
from refvi.checker.latex.tokens import tokenize


def one(src, definitions=None):
    (eq,) = readings(tokenize(src), definitions=definitions)
    return eq


def test_noise_measure_spellings():
    standard = (ir.Density("p", (ir.NOISE,), ()), ir.NOISE)
    for sub in (r"\varepsilon", r"\epsilon", r"\varepsilon \sim \mathcal{N}(0, I)",
                r"\varepsilon \sim \mathcal{N}(0, I_k)",
                r"\epsilon \sim p(\epsilon)"):  # fmt: skip
        assert noise.noise_measure(tokenize(sub)) == standard, sub
    declared = r"\xi \sim \mathcal{N}(0, I)"  # another letter, declared standard
    assert noise.noise_measure(tokenize(declared)) == standard
    for sub in (r"\varepsilon \sim \mathcal{N}(0, 2)", r"\xi", r"\xi \sim q(z|x)",
                r"q(z|x)", ""):  # fmt: skip
        assert noise.noise_measure(tokenize(sub)) is None, sub


def test_density_at_the_reparameterized_latent():
    for arg in (r"m + \sigma \odot \varepsilon", r"\mu + \sigma \epsilon"):
        eq = one(rf"\log p(x, {arg}) = 0")
        at = eq.exprs[0].arg
        assert at == ir.AtNoise(ir.Density("p", ("x", "z"), ()), ir.Reparam(True))
    for arg in (r"z(\varepsilon)", r"z_\varepsilon", r"z_{\varepsilon}"):
        eq = one(rf"\log q({arg} | x) = 0")
        assert eq.exprs[0].arg == ir.AtNoise(ir.Density("q", ("z",), ("x",)),
                                             ir.Reparam())  # fmt: skip
    # in the given part too
    eq = one(r"\log p(x | z(\varepsilon)) = 0")
    assert eq.exprs[0].arg.body == ir.Density("p", ("x",), ("z",))


def test_sample_link_forms():
    assert noise.link(tokenize(r"z_s = m + \sigma \odot \varepsilon_s")) == 3
    assert noise.link(tokenize(r"z_{1} = m + \sigma \varepsilon_{1}")) == 5
    for src in (r"z_s = m + \sigma \odot \varepsilon",  # no index on the noise
                r"z = m + \sigma \odot \varepsilon_s",  # none on z
                r"z_s = m + \sigma \odot \varepsilon_s + 1", r"z_s = m_q"):  # fmt: skip
        assert noise.link(tokenize(src)) is None, src


def test_linked_draw_reads_as_the_reparameterized_latent():
    linked = {noise.LINK: Definition(noise.LINK, None, ir.Reparam(True), 1)}
    eq = one(r"\log p(x, z_1) = 0", linked)
    assert isinstance(eq.exprs[0].arg, ir.AtNoise)
    eq = one(r"\log p(x, z_1) = 0")  # unlinked: z_1 is the latent z
    assert eq.exprs[0].arg == ir.Density("p", ("x", "z"), ())


def test_noise_arguments():
    for src, n in ((r"(\varepsilon)", 3), (r"(\varepsilon_1)", 5),
                   (r"(\varepsilon_{s})", 7), (r"(\varepsilon + 1)", 0),
                   (r"(z)", 0)):  # fmt: skip
        assert noise.noise_argument(tokenize(src), 0) == n, src


def test_hat_names_and_their_definitions():
    cases = {r"\hat F_B(\varepsilon) = 1": "\\hat{F}_B",
             r"\widehat{F}_{B} := 1": "\\hat{F}_B", r"\hat D = 1": "\\hat{D}",
             r"\hat g_{SF, b}(\varepsilon) = 1": "\\hat{g}_SF,b",
             r"\hat{\mathbb{E}}_q[f] = 1": "\\hat{\\mathbb{E}}_q",
             r"\widehat{\operatorname{se}} = 1": "\\hat{se}"}  # fmt: skip
    for src, key in cases.items():
        found = estimators.defining(tokenize(src), RELATIONS)
        assert found is not None and found[0] == key, src
    for src in (r"\hat q(z|x) = 1", r"\hat F_B(\varepsilon_1) = 1",
                r"\hat F_B \le 1", r"\hat{\mathbb{E}}_q[f] \le 1",
                r"\hat{\Sigma} = 1"):  # fmt: skip
        assert estimators.defining(tokenize(src), RELATIONS) is None, src


def test_undefined_estimator_is_unsupported_with_the_defining_form():
    p = Parser(tokenize(r"\hat F_C(\varepsilon)"))
    try:
        p.expr()
    except ir.Unsupported as err:
        assert "not defined" in str(err) and "\\hat{F}_C" in str(err)
    else:
        raise AssertionError("an undefined estimator was read")


def test_noise_average_is_over_the_noise_only_when_z_is_not_used():
    defined = {"\\hat{F}": Definition("\\hat{F}", None, ir.Reparam(True), 1)}
    eq = one(r"\frac{1}{S} \sum_{s=1}^{S} \hat F(\varepsilon_s) \approx 1", defined)
    assert eq.exprs[0].var == ir.NOISE
    eq = one(r"\frac{1}{S} \sum_{s=1}^{S} \log p(x, z_s) \approx 1")
    assert eq.exprs[0].var == "z"


def test_draws_are_deterministic_and_standard_normal():
    a, b = noise.mc_draws(3, 4000, 2), noise.mc_draws(3, 4000, 2)
    assert a.shape == (1, 1, 4000, 2) and np.array_equal(a, b)
    assert not np.array_equal(a, noise.mc_draws(4, 4000, 2))
    # mean within 5 standard errors of 0, variance within 5 of 1 (rate < 1e-5)
    assert np.all(np.abs(a.mean(axis=2)) < 5 / np.sqrt(4000))
    assert np.all(np.abs(a.var(axis=2) - 1) < 5 * np.sqrt(2 / 4000))
    assert np.array_equal(noise.drawn(2), noise.drawn(2))
    assert noise.drawn(2).shape == (1, 1, noise.DRAWS, 2)


def test_evaluation_bar_at_the_exact_posterior():
    eq = one(r"\nabla_{m, L} F(q) \big|_{q = p(z|x)} = 0")
    at = eq.exprs[0]
    assert isinstance(at, ir.AtExactQ) and at.body.group == "phi"
    assert isinstance(at.body.body, ir.ELBO)
    eq = one(r"\nabla_\theta F(q) \Big|_{q(z \mid x) = p(z \mid x)} = 0")
    assert isinstance(eq.exprs[0], ir.AtExactQ)
    for src in (r"\nabla_\theta F(q) \big|_{q = p(z)} = 0",
                r"\nabla_\theta F(q) \big|_{q = q^*} = 0"):  # fmt: skip
        try:
            one(src)
        except ir.Unsupported:
            continue
        raise AssertionError(f"read a bar with another value: {src}")
