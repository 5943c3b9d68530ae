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
