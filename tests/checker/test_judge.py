"""The one judge of both front ends (refvi.checker.judge): three verdicts from
values and error estimates, the chain rule, and what it changes end to end
(divergent integrals, overflow, hints, the aggregated setting's quadrature)."""

import numpy as np
import pytest

from refvi.checker.derivation import parse, verify
from refvi.checker.judge import (
    FAILS,
    HOLDS,
    UNDETERMINED,
    Node,
    Value,
    compare,
    judge_chain,
    judge_instances,
)
from refvi.checker.latex import check_latex_text
from refvi.checker.measured import Measured, refinement_target
from refvi.checker.settings.aggregated import aggregated_setting
from refvi.cli import main

TOL, SEP, SIGMAS = 1e-9, 1e-6, 5.0


def verdict(a, b, relation, error=0.0):
    return compare(Value(a), Value(b, error), relation, TOL, SEP, SIGMAS).verdict


# ---------------------------------------------------------------------------
# compare: the interval [d - e, d + e] against the tolerance.


@pytest.mark.parametrize(
    ("a", "b", "relation", "error", "want"),
    [
        (1.0, 1.0 + 5e-10, "=", 0.0, HOLDS),
        (1.0, 1.0 + 5e-10, "=", 4e-10, HOLDS),  # d + e = 9e-10 <= tol
        (1.0, 1.0 + 5e-10, "=", 6e-10, UNDETERMINED),  # straddles tol
        (1.0, 1.0 + 2e-9, "=", 0.0, FAILS),
        (1.0, 1.0 + 2e-9, "=", 1.5e-9, UNDETERMINED),
        (1.0, 1.3, "=", 1.5, UNDETERMINED),  # a divergent integral's estimate
        (1.0, 10.0, "=", 1.5, FAILS),  # wrong beyond any error
        (1.0, 2.0, "!=", 0.0, HOLDS),
        (1.0, 1.0, "!=", 0.0, FAILS),
        (1.0, 1.0 + 2e-6, "!=", 5e-6, UNDETERMINED),
        (1.0, 2.0, "<=", 0.0, HOLDS),
        (2.0, 1.0, "<=", 0.0, FAILS),
        (1.0, 1.0, "<=", 0.0, HOLDS),
        (1.0, 1.0, "<", 0.0, FAILS),
        (1.0, 1.0 + 1e-6, "<", 0.0, HOLDS),
        (1.0, 1.0 + 1e-6, "<", 1e-5, UNDETERMINED),
        (2.0, 1.0, ">=", 0.0, HOLDS),
        (2.0, 1.0, ">", 0.0, HOLDS),
        (1.0, 2.0, ">", 0.0, FAILS),
    ],
)
def test_compare_three_verdicts(a, b, relation, error, want):
    assert verdict(a, b, relation, error) == want


def test_compare_deviation_is_relative_above_one_and_says_why_undetermined():
    c = compare(Value(1e6), Value(1e6 * (1 + 5e-10), 1e-3), "=", TOL, SEP, SIGMAS)
    assert c.deviation == pytest.approx(5e-10, rel=1e-6)
    assert c.error == pytest.approx(1e-9) and c.verdict == UNDETERMINED
    assert "error estimate 1.0e-09" in c.reason and c.margin < 0
    held = compare(Value(1.0), Value(1.0), "=", TOL, SEP, SIGMAS)
    assert held.margin == TOL and held.reason is None and held.route == "direct"


def test_sides_of_different_sizes_fail_and_say_so():
    got = compare(Value(np.eye(2)), Value(np.eye(3)), "=", TOL, SEP, SIGMAS)
    assert got.verdict == FAILS and got.reason.endswith("(2x2 and 3x3)")


def test_a_side_that_overflows_or_diverges_is_undetermined_for_every_relation():
    for relation in ("=", "!=", "<=", "<"):
        c = compare(Value(np.inf), Value(1.0), relation, TOL, SEP, SIGMAS)
        assert c.verdict == UNDETERMINED and "not finite" in c.reason
        c = compare(Value(np.array([1.0, np.nan])), Value(1.0), relation, 1, 1, 1)
        assert c.verdict == UNDETERMINED


def test_densities_compare_their_logs_unscaled():
    tiny = Value(1e-30, log=Value(np.log(1e-30)))
    other = Value(2e-30, log=Value(np.log(2e-30)))
    # as plain numbers both are ~0 and "equal" to 1e-9; as densities they differ
    assert compare(Value(1e-30), Value(2e-30), "=", TOL, SEP, SIGMAS).holds
    c = compare(tiny, other, "=", TOL, SEP, SIGMAS)
    assert c.verdict == FAILS and c.deviation == pytest.approx(np.log(2))


def test_monte_carlo_relation_uses_the_standard_error():
    estimate = Value(
        np.array([1.0, 2.0]), route="monte carlo", se=np.full(2, 0.1), n=100
    )
    near, far = Value(np.array([1.2, 2.1])), Value(np.array([1.0, 3.0]))
    assert compare(estimate, near, "~", TOL, SEP, SIGMAS).verdict == HOLDS
    c = compare(far, estimate, "~", TOL, SEP, SIGMAS)
    assert c.verdict == FAILS and c.deviation == pytest.approx(10.0)
    both = compare(estimate, estimate, "~", TOL, SEP, SIGMAS)
    assert both.verdict == HOLDS and both.deviation == 0.0


def test_monte_carlo_relation_counts_the_other_sides_quadrature_error():
    """|z| = 4 against 5 standard errors (se 0.1): a quadrature error 0.05 on
    the value side (0.5 se) still holds, 0.2 (2 se) straddles the threshold
    (undetermined); |z| = 7 with 0.1 (1 se) fails beyond any error."""
    estimate = Value(1.0, route="monte carlo", se=0.1, n=100)
    for value, error, want in ((1.4, 0.05, HOLDS), (1.4, 0.2, UNDETERMINED),
                               (1.7, 0.1, FAILS), (1.4, 0.0, HOLDS)):  # fmt: skip
        c = compare(estimate, Value(value, error), "~", TOL, SEP, SIGMAS)
        assert c.verdict == want, (value, error)
        assert c.error == pytest.approx(error / 0.1)


# ---------------------------------------------------------------------------
# The chain rule: each side is compared with the last side that held.


def chain(values, relations=None, keys=None):
    relations = relations or ["="] * len(values)
    keys = keys or list(range(len(values)))
    return [
        (k, r, Value(float(v)), TOL)
        for k, r, v in zip(keys, relations, values, strict=True)
    ]


def verdicts(nodes):
    out = {}
    for key, _, c in judge_chain(nodes, SEP, SIGMAS):
        out.setdefault(key, []).append(c.verdict)
    return {k: FAILS if FAILS in v else v[-1] for k, v in out.items()}


def test_a_wrong_row_in_a_chain_of_five_fails_alone():
    got = verdicts(chain([1, 1, 1, 7, 1, 1]))
    assert got == {0: HOLDS, 1: HOLDS, 2: HOLDS, 3: FAILS, 4: HOLDS, 5: HOLDS}


def test_a_wrong_first_side_is_the_odd_one_out():
    # keys as the LaTeX front end gives them: relation k joins sides k and k+1
    got = verdicts(chain([7, 1, 1, 1], keys=[0, 0, 1, 2]))
    assert got == {0: FAILS, 1: HOLDS, 2: HOLDS}


def test_an_undetermined_side_is_not_a_reference():
    nodes = chain([1, 1, 1, 1])
    nodes[2] = (2, "=", Value(1.3, 1.5), TOL)  # a divergent integral
    got = verdicts(nodes)
    assert got == {0: HOLDS, 1: HOLDS, 2: UNDETERMINED, 3: HOLDS}


def test_inequalities_compose_through_equalities():
    nodes = chain([1, 1, 2, 2, 1.5], relations=["=", "=", "<=", "=", ">="])
    got = verdicts(nodes)
    assert got == {0: HOLDS, 1: HOLDS, 2: HOLDS, 3: HOLDS, 4: HOLDS}
    nodes = chain([1, 1, 2, 2, 0.5], relations=["=", "=", "<=", "=", "<="])
    assert verdicts(nodes)[4] == FAILS


def test_instances_are_tallied_worst_first_and_refined_only_when_undecided():
    """Instance "b" is undecided on its first rule (error 1e-8 > tol) and
    holds on the finer one; instance "c" fails: the tally is the failing
    comparison, names "c" alone, and only "b" is computed again."""
    calls = []

    def chains_of(instance, refine):
        calls.append((instance, refine))
        error = 1e-8 if instance == "b" and not refine else 0.0
        right = 1.5 if instance == "c" else 1.0
        return [
            [Node(0, None, Value(1.0), TOL), Node(0, "=", Value(right, error), TOL)]
        ]

    tallies = judge_instances(chains_of, [(i, i) for i in "abc"], SEP, SIGMAS)
    (tally,) = tallies.values()
    assert list(tallies) == [(0, "=")]
    assert tally.comparison.verdict == FAILS and tally.failing == ["c"]
    assert calls == [("a", False), ("b", False), ("b", True), ("c", False)]
    # without a finer rule the undecided instance stays undetermined
    only_b = judge_instances(
        lambda i, refine: None if refine else chains_of(i, refine), [("b", "b")],
        SEP, SIGMAS,
    )  # fmt: skip
    assert only_b[0, "="].comparison.verdict == UNDETERMINED


# ---------------------------------------------------------------------------
# Both front ends.

BLOCK_CHAIN = """---
settings: linear_gaussian
---
$$ D_{KL}(q \\| p) $$

```check
kl
```

$$ = b $$

```check
= integral(exp(log_q) * (log_q - log_post))
```

$$ = c $$

```check
= log_px - E_q(log_joint - log_q)
```

$$ = d $$

```check
= log_px + E_q(log_joint - log_q)
```

$$ = e $$

```check
= E_q(log_q - log_post)
```

$$ = \\log p(x) - F(q) $$

```check
= log_px - elbo
```
"""


def test_block_chain_of_five_rows_with_a_wrong_third_row_fails_alone():
    result = verify(parse(BLOCK_CHAIN, "chain.md"), seeds=2)
    got = [(r.line, r.verdict) for r in result.lines]
    assert got == [
        (4, HOLDS),  # the chain's first side, confirmed by the next row
        (10, HOLDS),
        (16, HOLDS),
        (22, FAILS),
        (28, HOLDS),
        (34, HOLDS),
    ]


LATEX_CHAIN = r"""---
settings: linear_gaussian
latent: Z
observed: X
---
$$
\begin{aligned}
\log p(X) &= \mathrm{ELBO} + D_{KL}(q(Z|X) \| p(Z|X)) \\
&= \mathbb{E}_{q(Z|X)}[\log p(X, Z) - \log q(Z|X)] + D_{KL}(q(Z|X) \| p(Z|X)) \\
&= \mathbb{E}_{q(Z|X)}[\log p(X, Z) - \log q(Z|X)] - D_{KL}(q(Z|X) \| p(Z|X)) \\
&= \mathbb{E}_{q(Z|X)}[\log p(X, Z) - \log q(Z|X)] + \mathbb{E}_{q(Z|X)}[\log q(Z|X) - \log p(Z|X)] \\
&= \log p(X)
\end{aligned}
$$
"""  # noqa: E501


def test_latex_chain_of_five_rows_with_a_wrong_third_row_fails_alone():
    result = check_latex_text(LATEX_CHAIN, "chain.md", seeds=2)
    got = [(r.line, r.status) for r in result.lines]
    assert got == [(8, HOLDS), (9, HOLDS), (10, FAILS), (11, HOLDS), (12, HOLDS)]


def test_declared_letters_a_wrong_line_fails_and_exits_1(tmp_path, capsys):
    # the hint library is written in z and x: it cannot read this file's
    # letters, and a hint never replaces the verdict
    path = tmp_path / "letters.md"
    path.write_text(LATEX_CHAIN)
    assert main(["verify", "--seeds", "2", str(path)]) == 1
    out = capsys.readouterr().out
    assert "1 fail" in out and "unsupported" not in out.split("lines:")[0]


DIVERGENT = r"""---
settings: linear_gaussian
---
$$ \mathbb{E}_{q(z|x)}\left[\frac{q(z|x)}{p(z|x)}\right] = 1 $$

$$ \exp(\exp(\exp(10))) \neq 1 $$
"""


def test_wrong_equality_on_a_divergent_integral_never_holds():
    """E_q[q/p] = int q^2/p diverges when q is more than twice as wide as p
    (and is > 1 otherwise): '= 1' is wrong, whatever the quadrature says."""
    result = check_latex_text(DIVERGENT, "divergent.md", seeds=3)
    wrong, overflow = result.lines
    assert wrong.status in (FAILS, UNDETERMINED)
    assert wrong.status != HOLDS


def test_true_inequality_that_overflows_is_undetermined_not_fails():
    result = check_latex_text(DIVERGENT, "divergent.md", seeds=2)
    overflow = result.lines[1]
    assert overflow.status == UNDETERMINED and "not finite" in overflow.reason


# ---------------------------------------------------------------------------
# Routes with error control: the aggregated setting's expectations over x.


def test_aggregated_expectation_refines_to_its_target_on_a_hard_instance():
    """Seed 3 has a narrow posterior (S = 0.05): a 40 x 40 rule is off by 5e-4
    there; the refined rule reaches the target and the exact prior."""
    names = aggregated_setting(3).names
    z = names["z"]
    with refinement_target(1e-10):
        value = names["E_model"](lambda x: np.exp(names["log_post"](z, x)))
    assert isinstance(value, Measured)
    assert np.all(value.error <= 1e-10)
    exact = np.exp(names["log_prior"](z))
    np.testing.assert_allclose(value.value, exact, rtol=0, atol=1e-12)


def test_aggregated_expectation_follows_the_line_tolerance():
    """The target is a tenth of the line's tolerance: a loose line stops at a
    lower order (a larger error, still below its target)."""
    names = aggregated_setting(3).names
    z = names["z"]
    errors = {}
    for target in (1e-4, 1e-12):
        with refinement_target(target):
            out = names["E_model"](lambda x: np.exp(names["log_post"](z, x)))
        assert np.all(out.error <= target)
        errors[target] = np.max(out.error)
    assert errors[1e-4] > 1e-10 > errors[1e-12]


def test_the_four_aggregated_lines_hold_on_the_hard_instance():
    from refvi.checker.derivation import parse_file
    from refvi.cli import bundled_derivations

    path = next(p for p in bundled_derivations() if p.name == "aggregated_posterior.md")
    result = verify(parse_file(path), seeds=4)  # seeds 0..3
    starts = (
        r"\int p_\theta(z|x) \, p_\theta(x) \, dx = p_\theta(z)",
        r"\int p_\theta(z|x) \, p_{\mathrm{data2}}(x) \, dx = p_\theta(z)",
        r"q_{\phi}(z) := \int q_{\phi}(z|x) p_\theta(x) dx \neq",
        r"\int \mathcal{N}(z; -M(x - \mu), S) \, p_\theta(x) \, dx",
    )
    for start in starts:
        (line,) = [r for r in result.lines if r.latex.startswith(start)]
        assert line.verdict == HOLDS, line
        assert "quadrature" in line.route


# ---------------------------------------------------------------------------
# Quadrature operators of every continuous setting: Measured values.

QUAD_DOC = """---
settings: mixture_prior
{extra}---

$$ KL(q \\| p) = \\log p(x) + \\mathbb{{E}}_q[\\log q - \\log p(x, z)] $$

```check
{tol}E_q(log_q - log_post)
= log_px + E_q(log_q - log_joint){planted}
```
"""


def quad_line(planted="", tol="", extra="", seeds=3):
    text = QUAD_DOC.format(planted=planted, tol=tol, extra=extra)
    (line,) = verify(parse(text, "t.md"), seeds=seeds).lines
    return line


def test_a_quadrature_line_holds_with_its_error_estimate_and_route():
    line = quad_line()
    assert line.verdict == HOLDS and "quadrature" in line.route
    assert 0 < line.error <= 2 * 1e-10


def test_a_wrong_quadrature_line_still_fails_with_its_error_estimate_present():
    """Mutation: 1e-7 added to a side (100 x the tolerance) fails although
    both sides carry an error estimate; 1e-12 (below it) still holds."""
    wrong = quad_line(" + 1e-7")
    assert wrong.verdict == FAILS and wrong.error > 0
    assert wrong.deviation > wrong.tolerance + wrong.error
    assert quad_line(" + 1e-12").verdict == HOLDS


def test_the_line_tolerance_sets_the_refinement_target():
    """The operators refine to a tenth of the line's tolerance: with
    ``tol: 1e-5`` the switch between the mixture posterior's components (on
    seed 0) is resolved less (a larger error estimate) and the line still
    holds."""
    tight, loose = quad_line(seeds=1), quad_line(tol="tol: 1e-5\n", seeds=1)
    assert loose.verdict == HOLDS and loose.tolerance == 1e-5
    assert tight.error < 1e-10 < loose.error <= 2 * 1e-6


def test_a_quadrature_that_cannot_reach_the_tolerance_is_undetermined():
    """E_q|z - m_q| has a kink at the mean: the rule's budget is spent
    before its differences fall to 1e-10 (they stall near 1e-4), so the exact
    value sqrt(2/pi) sigma is undetermined at the default tolerance; at
    ``tol: 1e-2`` the rule meets its target and the line holds."""
    text = """---
settings: mixture_prior
---

$$ \\mathbb{{E}}_q|z - m| = \\sqrt{{2/\\pi}}\\,\\sigma $$

```check
{tol}E_q(lambda z: np.abs(z[..., 0] - m_q[:, :1]))
= np.sqrt(2 / np.pi) * L_q[:, 0, 0]
```
"""
    (line,) = verify(parse(text.format(tol=""), "t.md"), seeds=2).lines
    assert line.verdict == UNDETERMINED and "no bound" in line.reason
    (line,) = verify(parse(text.format(tol="tol: 1e-2\n"), "t.md"), seeds=2).lines
    assert line.verdict == HOLDS


@pytest.mark.slow
def test_every_bundled_derivation_holds_on_100_seeds(capsys):
    """No bundled line fails on 100 instances per setting (several minutes)."""
    status = main(["verify", "--seeds", "100", "--no-strict"])
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert status == 0 and " 0 fail," in last, last
