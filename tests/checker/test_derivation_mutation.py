"""Mutation tests: every shipped derivation's checks are perturbed one at a
time (a sign flipped, the expression negated, a term dropped, one density or
expectation swapped for another) and the checker must report exactly the
perturbed line.

A derivation whose lines survive mutation is not verified: every expression of
every checked line is mutated and the mutant's chain verified. For a line of
equalities every mutant that changes the value must fail at that line (or stop
with an error at that line's check, or be undetermined there because its value
is NaN or inf); for a line with an inequality, != or ~ at least one mutant
must fail there; no mutant may make another line fail.
"""

import ast
from dataclasses import replace

import numpy as np
import pytest

from refvi.checker.derivation import (
    DerivationError,
    _evaluate_side,
    make_instance,
    parse,
    verify,
)
from refvi.cli import bundled_derivations

SEEDS = 2

#: Swaps that keep the expression well-formed in every setting having both.
SWAPS = {
    "log_q": "log_prior",
    "log_post": "log_q",
    "log_joint": "log_lik",
    "log_lik": "log_joint",
    "log_prior": "log_q",
    "log_p": "log_q",
    "E_q": "E_post",
    "E_post": "E_q",
    "E_p": "E_q",
    "E_data": "E_model",
    "E_model": "E_data",
    "E_data2": "E_data",
    "log_enc": "log_post",
    "log_enc_prior": "log_post",
    "log_enc_flip": "log_enc",
    "log_joint_new": "log_joint",
    "log_joint_vnew": "log_joint",
    "log_post_new": "log_post",
    "log_px_new": "log_px",
    "log_px_vnew": "log_px",
    "log_pdata2": "log_pdata",
    "log_pdata": "log_pmodel",
    "log_pmodel": "log_pdata2",
    "kl": "elbo",
    "elbo": "kl",
    "mean_q": "mean_p",
    "Sigma_q": "Sigma_p",
    "g_path_post": "g_sampled_post",
    "g_sampled_post": "g_path_post",
    "A_opt": "A_col",
    "A_col": "A_opt",
    "W_col": "W_opt",
    "log_std_col": "log_std_opt",
    "grad_opt": "grad_enc",
    "grad_col": "grad_elbo",
}


def _first(tree, kind):
    return next((n for n in ast.walk(tree) if isinstance(n, kind)), None)


def _flip(tree):
    """Swap the first + and -, or negate the expression when there is none."""
    node = next(
        (
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add | ast.Sub)
        ),
        None,
    )
    if node is None:
        tree.body = ast.UnaryOp(ast.USub(), tree.body)
    else:
        node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
    return tree


def _negate(tree):
    """Negate the whole expression."""
    tree.body = ast.UnaryOp(ast.USub(), tree.body)
    return tree


def _drop(tree):
    """Drop the right-hand term of the first + or -."""
    for parent in ast.walk(tree):
        for field, child in ast.iter_fields(parent):
            if isinstance(child, ast.BinOp) and isinstance(child.op, ast.Add | ast.Sub):
                setattr(parent, field, child.left)
                return tree
            if isinstance(child, list):
                for i, item in enumerate(child):
                    if isinstance(item, ast.BinOp) and isinstance(
                        item.op, ast.Add | ast.Sub
                    ):
                        child[i] = item.left
                        return tree
    return None


def _swap(tree):
    """Replace the first name that has a swap partner."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in SWAPS:
            node.id = SWAPS[node.id]
            return tree
    return None


MUTATIONS = {"flip": _flip, "negate": _negate, "drop": _drop, "swap": _swap}


def mutants(source):
    """(name, mutated source) for each mutation that applies to ``source``."""
    out = []
    for name, mutate in MUTATIONS.items():
        tree = mutate(ast.parse(source, mode="eval"))
        if tree is not None:
            out.append((name, ast.unparse(ast.fix_missing_locations(tree))))
    return out


def shipped():
    """Bundled derivations that have become derivations (front matter)."""
    return [p for p in bundled_derivations() if p.read_text().startswith("---")]


def _same_value(derivation, side, mutated_side):
    """Whether the mutant computes the same numbers on every instance."""
    for setting in derivation.settings:
        for seed in range(SEEDS):
            instance = make_instance(setting.name, setting.options, seed)
            try:
                tol = derivation.tolerance
                a = _evaluate_side(side, instance, derivation.path, tol)
                b = _evaluate_side(mutated_side, instance, derivation.path, tol)
            except DerivationError:
                return False
            a, b = np.asarray(a.value), np.asarray(b.value)
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-9, atol=1e-9):
                return False
    return True


def _chain_of(derivation, c):
    """The derivation cut to the chain holding check ``c`` (chains are judged
    independently, so a mutant can only change the verdicts of its own chain;
    cutting keeps the test fast)."""
    checks = derivation.checks
    start = c
    while start > 0 and checks[start].sides[0].relation is not None:
        start -= 1
    end = c + 1
    while end < len(checks) and checks[end].sides and checks[end].sides[0].relation:
        end += 1
    return replace(derivation, checks=checks[start:end])


@pytest.mark.parametrize("path", shipped(), ids=lambda p: p.name)
def test_every_line_is_killed_by_mutation(path):
    text = path.read_text()
    lines = text.splitlines()
    derivation = parse(text, path.name)
    assert verify(derivation, seeds=SEEDS).all_hold
    survivors = []
    for c, check in enumerate(derivation.checks):
        if check.unchecked is not None:
            continue
        equalities = all(s.relation in (None, "=") for s in check.sides)
        block_lines = {s.line for s in check.sides}
        killed = 0
        for side in check.sides:
            for name, source in mutants(side.source):
                new_lines = list(lines)
                prefix = f"{side.relation} " if side.relation else ""
                end = side.line  # the side's continuation lines go with it
                while lines[end][:1] in (" ", "\t") and lines[end].strip():
                    end += 1
                new_lines[side.line - 1 : end] = [prefix + source]
                mutated = _chain_of(parse("\n".join(new_lines) + "\n", path.name), c)
                try:
                    result = verify(mutated, seeds=SEEDS)
                except DerivationError as err:
                    # reported at this line's check block, not elsewhere
                    assert err.line in block_lines, (name, source, str(err))
                    killed += 1
                    continue
                bad = [r.line for r in result.lines if r.verdict == "fails"]
                assert bad in ([], [check.line]), (name, source, bad)
                # a mutant whose value is NaN or inf: undetermined at its line
                nan = [r.line for r in result.lines if "not finite" in str(r.reason)]
                assert nan in ([], [check.line]), (name, source, nan)
                if bad or nan:
                    killed += 1
                elif equalities:
                    mutated_side = next(
                        s
                        for c in mutated.checks
                        for s in c.sides
                        if s.line == side.line
                    )
                    if not _same_value(derivation, side, mutated_side):
                        survivors.append((check.line, name, source))
        if killed == 0:
            survivors.append((check.line, "all", check.sides[-1].source))
    assert survivors == []
