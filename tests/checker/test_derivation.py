"""The derivation checker: format, chains and blame, relations, errors.

Small derivations are written inline; each checker is shown to fail on a
deliberately wrong line, and each malformed input to give one error naming
the file and line.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from refvi.checker.derivation import (
    DerivationError,
    latex_sides,
    make_instance,
    parse,
    verify,
)

ROOT = Path(__file__).resolve().parents[2]


def doc(body, settings="linear_gaussian, mixture", extra=""):
    return f"---\nsettings: {settings}\n{extra}---\n\n{body}"


def block(latex, *lines):
    return f"$$ {latex} $$\n\n```check\n" + "\n".join(lines) + "\n```\n\n"


def run(text, seeds=2):
    return verify(parse(text, "t.md"), seeds=seeds)


def failing(result):
    return [r.line for r in result.lines if r.unchecked is None and not r.holds]


def line_of(text, needle):
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


KL_CHAIN = (
    block("D_{KL}(q \\| p) = A", "kl", "= integral(exp(log_q) * (log_q - log_post))")
    + block("D_{KL}(q \\| p) = B", "= log_px + E_q(log_q - log_joint)")
    + block("D_{KL}(q \\| p) = C", "= log_px - E_q(log_joint - log_q)")
)


def test_readme_example_is_a_valid_derivation_that_holds():
    text = (ROOT / "derivations" / "README.md").read_text()
    example = re.search(r"````markdown\n(.*?)\n````", text, flags=re.S).group(1)
    result = verify(parse(example, "README-example.md"))
    assert result.checked == 4 and result.hold == 4 and result.unchecked == 1


def test_a_true_chain_holds_in_every_setting():
    result = run(doc(KL_CHAIN, "linear_gaussian, mixture, mixture_prior"))
    assert result.ok and result.checked == 3
    assert max(r.deviation for r in result.lines) < 1e-9


def test_a_wrong_middle_line_is_blamed_alone():
    wrong = KL_CHAIN.replace(
        "= log_px + E_q(log_q - log_joint)", "= E_q(log_q - log_joint)"
    )
    text = doc(wrong)
    assert failing(run(text)) == [line_of(text, "= B")]


def test_a_wrong_first_line_is_blamed_alone():
    wrong = KL_CHAIN.replace("kl\n= integral", "kl\n= 2 * integral")
    text = doc(wrong)
    assert failing(run(text)) == [line_of(text, "= A")]


def test_a_wrong_last_line_is_blamed():
    wrong = KL_CHAIN.replace(
        "= log_px - E_q(log_joint - log_q)", "= log_px - E_q(log_joint)"
    )
    text = doc(wrong)
    assert failing(run(text)) == [line_of(text, "= C")]


def test_a_chain_start_line_alone_is_blamed_when_it_disagrees_with_the_rest():
    text = doc(
        block("D_{KL}", "kl + 1")
        + block("D_{KL} = \\log p(x) - F", "= log_px - elbo")
        + block("D_{KL} = E", "= E_q(log_q - log_post)")
    )
    assert failing(run(text)) == [line_of(text, "$$ D_{KL} $$")]


def test_an_identity_true_for_one_instance_only_fails():
    # W[0, 0] equals itself in every instance but not the same number in two
    # instances; an expression of seed 0's value is wrong elsewhere
    value = float(make_instance("linear_gaussian", (), 0).names["W"][0, 0])
    text = doc(block("W_{11} = w", "W[0, 0]", f"= {value!r}"), "linear_gaussian")
    assert run(text, seeds=1).ok
    assert not run(text, seeds=3).ok


@pytest.mark.parametrize(
    ("relation", "rhs", "holds"),
    [
        ("<=", "log_px", True),
        ("<", "log_px", True),
        (">=", "log_px", False),
        ("<=", "E_q(log_joint - log_q)", True),
        ("<", "E_q(log_joint - log_q)", False),  # equal: not strictly less
        ("!=", "log_px", True),
        ("!=", "log_px - kl", False),
    ],
)
def test_relations(relation, rhs, holds):
    latex = "F \\le \\log p(x) \\text{ or } \\log p(x) - KL"
    text = doc(block(latex, "E_q(log_joint - log_q)", f"{relation} {rhs}"))
    assert run(text).ok is holds


def test_tolerance_is_relative_above_one_and_can_be_set_per_line():
    text = doc(block("F = x", "log_px", "= log_px * (1 + 1e-7)"), "linear_gaussian")
    assert not run(text).ok
    loose = text.replace("```check\n", "```check\ntol: 1e-6\n")
    assert run(loose).ok
    file_wide = doc(
        block("F = x", "log_px", "= log_px * (1 + 1e-7)"),
        "linear_gaussian",
        "tolerance: 1e-6\n",
    )
    assert run(file_wide).ok


def test_monte_carlo_line_holds_within_standard_errors_and_fails_when_biased():
    good = doc(block("F \\approx \\hat F", "MC_q(log_joint - log_q)", "~ elbo"))
    assert run(good).ok
    biased = doc(block("F \\approx \\hat F", "MC_q(log_joint - log_q) + 0.2", "~ elbo"))
    assert not run(biased).ok


def test_instances_are_deterministic():
    first = make_instance.__wrapped__("mixture_prior", (), 1)
    again = make_instance.__wrapped__("mixture_prior", (), 1)
    assert np.array_equal(first.names["x"], again.names["x"])
    assert np.array_equal(first.names["kl"], again.names["kl"])
    other = make_instance.__wrapped__("mixture_prior", (), 2)
    assert not np.array_equal(first.names["x"], other.names["x"])


def test_a_check_cannot_change_the_instance():
    text = doc(block("a = b", "log_px.sort()"), "linear_gaussian")
    with pytest.raises(DerivationError, match=r"attribute \.sort is not allowed"):
        run(text)


def test_instances_are_deep_frozen():
    """Not even trusted code can make a cached instance's array writable."""
    W = make_instance("linear_gaussian", (), 0).names["W"]
    assert not W.flags.writeable
    with pytest.raises(ValueError, match="WRITEABLE"):
        W.setflags(write=True)
    with pytest.raises(ValueError, match="read-only"):
        W[0, 0] = 1.0


def test_unchecked_lines_are_counted_and_break_the_chain():
    text = doc(
        block("a = b", "unchecked: prose only") + block("D_{KL} = KL", "kl", "= kl")
    )
    result = run(text)
    assert (result.checked, result.hold, result.unchecked) == (1, 1, 1)
    continued = doc(
        block("a = b", "unchecked: prose only") + block("D_{KL} = c", "= kl")
    )
    with pytest.raises(DerivationError, match=r"continues a chain"):
        run(continued)


def test_latex_sides_split_at_top_level_relations_only():
    assert latex_sides(r"a = b_{i=1} \le c \geq d \neq e \approx f") == [
        "a",
        "b_{i=1}",
        "c",
        "d",
        "e",
        "f",
    ]
    assert latex_sides(r"\left( x \right) \leq y") == [r"\left( x \right)", "y"]


def test_closed_form_allowed_only_where_the_latex_names_it():
    named = doc(block("D_{KL}(q \\| p) = \\log p(x) - F", "kl", "= log_px - elbo"))
    assert run(named).ok
    reused = doc(
        block(
            "D_{KL}(q \\| p) = \\mathbb{E}_q[\\log q - \\log p(z|x)]",
            "E_q(log_q - log_post)",
            "= kl",
        )
    )
    with pytest.raises(DerivationError, match=r"'kl' is a closed form.*as written"):
        run(reused)


# ---------------------------------------------------------------------------
# Malformed input: one error with file and line.


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("---\nsettings: linear_gaussian\n", 1, "not closed"),
        ("---\nsettings: nonsense\n---\n", 2, "unknown setting 'nonsense'"),
        ("---\nsettings: mixture\nseed: 2\n---\n", 3, "did you mean 'seeds'"),
        ("---\nsettings: mixture\nseeds: many\n---\n", 3, "seeds must be an integer"),
        (doc("$$ a = b $$\n\nsome prose\n"), 5, "has no check block"),
        (doc("$$ a = b $$\n"), 5, "has no check block"),
        (doc("$$ a = b\n"), 5, "has no check block"),
        (doc("text $$ a $$\n"), 5, "has no check block"),
        (doc("```check\nkl\n```\n"), 5, "without a displayed equation"),
        (doc(block("a = b", "log_px +")), 8, "syntax error"),
        (doc(block("a = b", "")), 8, "empty check block"),
        (doc(block("a = b", "log_px", "log_px")), 9, "needs a relation"),
        (doc(block("a = b", "__import__('os')")), 8, "unknown name '__import__'"),
        (doc(block("a = b", "np.__class__")), 8, "private attribute"),
        (doc(block("a = b", "[z for z in x]")), 8, "comprehension is not allowed"),
        (doc(block("a = b", "unchecked: why", "kl")), 8, "either unchecked"),
        (doc(block("a = b", "unchecked:")), 8, "needs a reason"),
        (doc(block("a = b", "= kl")), 8, "continues a chain"),
        (doc("```python\nx\n"), 5, "not closed"),
    ],
)
def test_malformed_input_names_file_and_line(text, line, message):
    with pytest.raises(DerivationError, match=re.escape(message)) as err:
        run(text)
    assert err.value.line == line
    assert str(err.value).startswith(f"t.md:{line}: error: ")


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ("no_such_name", "unknown name 'no_such_name' in setting 'linear_gaussian'"),
        ("log_px[5]", "IndexError in check (setting linear_gaussian, seed 0)"),
        ("log_q", "function of z"),
        ("'text'", "not a number"),
    ],
)
def test_runtime_problems_are_errors_with_the_check_line(check, message):
    text = doc(block("a = b", check), "linear_gaussian")
    with pytest.raises(DerivationError, match=re.escape(message)) as err:
        run(text)
    assert err.value.line == 8


@pytest.mark.parametrize(
    "check",
    ["log(-1 + 0 * log_px)", "np.exp(1000 + 0 * log_px)", "MC_q(log_q) * 1e308 * 1e10"],
)
def test_a_value_that_is_not_finite_makes_its_line_undetermined(check):
    """NaN or inf is a verdict on the line (undetermined, with the reason),
    not an error of the file; the other lines are still judged."""
    rhs = "~ MC_q(log_q)" if "MC_q" in check else "= log_px"
    text = doc(block("a = b", check, rhs) + block("c = d", "log_px", "= log_px"),
               "linear_gaussian")  # fmt: skip
    first, second = run(text).lines
    assert first.verdict == "undetermined" and "not finite" in first.reason
    assert second.verdict == "holds"


def test_wrong_shapes_are_an_error():
    text = doc(block("a = b", "log_px", "= np.ones(3)"), "linear_gaussian")
    with pytest.raises(DerivationError, match=r"shapes \(2,\) and \(3,\)"):
        run(text)


def test_too_many_expressions_for_the_equation_is_an_error():
    text = doc(block("a = b", "log_px", "= log_px", "= log_px"), "linear_gaussian")
    with pytest.raises(DerivationError, match="only 2 side"):
        run(text)


def test_monte_carlo_estimate_only_compared_by_tilde():
    text = doc(block("a = F", "MC_q(log_joint - log_q)", "= elbo"))
    with pytest.raises(DerivationError, match="'~' compares"):
        run(text)
    text = doc(block("a \\approx b", "log_px", "~ log_px"))
    with pytest.raises(DerivationError, match="'~' compares"):
        run(text)


@pytest.mark.parametrize("option", ["colour=red", "q=triangular", "k=two"])
def test_unknown_setting_option_is_an_error(option):
    text = doc(block("a = b", "log_px"), f"linear_gaussian({option})")
    with pytest.raises(DerivationError, match=r"t.md:2: error: setting"):
        run(text)


@pytest.mark.parametrize("family", ["full", "diag", "posterior"])
def test_q_family_option(family):
    text = doc(
        block("D_{KL} = KL", "kl", "= E_q(log_q - log_post)")
        + block("L_q = L", "L_q", "= L_q * np.eye(k)")
        + block("D_{KL} = 0", "E_q(log_q - log_post)", "= 0"),
        f"linear_gaussian(q={family})",
    )
    result = run(text)
    holds = [r.holds for r in result.lines]
    assert holds == [True, family == "diag", family == "posterior"]


def test_settings_with_options_parse():
    text = doc(
        block("a = b", "log_px", "= log_px"), "linear_gaussian(k=1, d=2), mixture"
    )
    derivation = parse(text, "t.md")
    assert [s.label() for s in derivation.settings] == [
        "linear_gaussian(k=1, d=2)",
        "mixture",
    ]
    assert verify(derivation, seeds=1).ok


def test_fixed_parameters_of_linear_gaussian():
    from scipy import stats

    from refvi.checker.settings.linear_gaussian import linear_gaussian_setting

    inst = linear_gaussian_setting(0, k="1", d="1", W="1", mu="0", psi="0.5")
    nm = inst.names
    assert nm["W"].tolist() == [[1.0]] and nm["psi"].tolist() == [0.5]
    # the evidence of x = z + noise: N(0, 1 + 0.5), by scipy
    want = stats.norm(0.0, np.sqrt(1.5)).logpdf(nm["x"][:, 0])
    np.testing.assert_allclose(nm["log_px"], want, rtol=1e-12)
    # the q and data draws do not depend on which parameters are fixed
    other = linear_gaussian_setting(0, k="1", d="1")
    np.testing.assert_array_equal(nm["L_q"], other.names["L_q"])
    with pytest.raises(ValueError, match="W must be a number"):
        linear_gaussian_setting(0, W="one")
