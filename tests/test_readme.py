"""The README's Python section runs as written and says what it computes."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_section_runs_and_agrees_with_scikit_learn():
    blocks = python_blocks()
    assert blocks, "README.md has no python block"
    names = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), names)  # noqa: S102
    from refvi import gaussian

    # the printed KL, against the dense formula of (G.6)
    q, p = names["q"], names["p"]
    S_p = p.cov
    delta = p.mean - q.mean
    dense = 0.5 * (
        np.trace(np.linalg.solve(S_p, q.cov))
        + delta @ np.linalg.solve(S_p, delta)
        - 2
        + np.linalg.slogdet(S_p)[1]
        - np.linalg.slogdet(q.cov)[1]
    )
    assert abs(gaussian.kl(q, p) - dense) <= 1e-13 * dense
    assert f"{dense:.4f}" == "0.5443"
    assert names["kls"].shape == (1000,)
    assert abs(names["ll_refvi"] - names["ll_sklearn"]) <= 1e-8 * abs(
        names["ll_sklearn"]
    )


def test_readme_cross_check_example_catches_the_planted_bug():
    """The 'Cross-check your implementation' example: the KL without its trace
    term fails on 'value' at the entry and by the errors the README prints, and
    adding the trace term makes it pass."""
    names = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), names)  # noqa: S102
    report = names["report"]
    (failure,) = report.failures
    assert failure.name == "value" and failure.worst_index == (0,)
    printed = README.read_text().replace("\n# ", " ")
    assert f"got {failure.got:.12g}..., expected {failure.ref!r}" in printed
    assert f"max abs error {failure.max_abs_error:.3g}," in printed
    assert f"relative error {failure.rel_error:.3g} (tolerance 1e-12)" in printed

    def fixed(**kw):
        S_q = kw["scale_tril_q"] @ np.swapaxes(kw["scale_tril_q"], -1, -2)
        S_p = kw["scale_tril_p"] @ np.swapaxes(kw["scale_tril_p"], -1, -2)
        trace = np.trace(np.linalg.solve(S_p, S_q), axis1=-2, axis2=-1)
        return {"value": names["my_kl"](**kw)["value"] + 0.5 * trace}

    names["assert_matches"](fixed, "gaussian.kl_full.ordinary", outputs=["value"])
