"""Measure every public value and gradient against 50-digit references; write
docs/accuracy.md.

Runs every check of tests/accuracy/suite.py (the stress corpus), measures the
normwise relative error of each output and the problem's condition number
kappa (every float input perturbed by eps, reference re-evaluated), and
writes one row per function: the worst error over the corpus and its outputs
in units of eps, where it occurred, and kappa there. Usage:

    python benchmarks/accuracy_table.py [--out docs/accuracy.md]

Takes a few minutes (the references are 50-digit Python arithmetic).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "accuracy"))

import suite  # noqa: E402
from mpref import EPS  # noqa: E402

HEADER = """# Accuracy

Every public value and gradient of `gaussian`, `categorical`,
`linear_gaussian`, `linear_gaussian_em`, `mixture`, `mixture_em`,
`mixture_prior` and `mixture_kl` compared with a 50-digit mpmath evaluation
of the same quantity written naively (dense covariances, explicit inverses
and determinants, gradients by 50-digit central differences), over a stress
corpus: condition numbers to 1e10, offsets to 1e8 sigma, a scale of 1e-8 at
(1, 1), weights down to 1e-300 and logits of +-1e3, d = 1, k = 1, n = 1
(`tests/accuracy/suite.py`).

Errors are normwise relative (max |got - ref| / max |ref| over the entries of
one output) in units of eps = 2^-52 = 2.2e-16, the worst over every corpus
case and every output (the value and each gradient) of the function. kappa is
the condition number of the problem at that case, in units of eps: the
largest relative change of the 50-digit result when every float input is
perturbed by eps relatively -- the error a backward-stable algorithm may
make. A row holds when the worst error is at most 1e-12 relative (4504 eps),
or at most 16 kappa eps where the problem itself is that ill-conditioned (the
"bound" column says which).

Regenerate with `python benchmarks/accuracy_table.py` (the same comparison
runs as tests in `tests/accuracy/test_accuracy_suite.py`).

| function | worst error (eps) | at (case: output) | kappa there (eps) | bound |
|---|---:|---|---:|---|
"""


FOOTER = """
Not in the corpus (their accuracy is not measured here): `linear_gaussian_em`
beyond `log_marginal_total` and `expected_stats` (`elbo_total`, `m_step`, `em`),
`mixture_em.em` (its steps are `m_step` above), and the numerical routes with
their own error estimates (`mixture_prior.elbo_quadrature`/`_montecarlo`,
`mixture_kl.kl_montecarlo`). Rows named `[diag]`, `[diag q]`, `[full]` or
`[a||b]` are the diagonal (`log_std`) forms and argument-form pairs.
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "docs" / "accuracy.md"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = {}
    for make in suite.ALL.values():
        for check in make():
            for r in suite.measure(check, rng, always_kappa=True):
                best = rows.get(r.function)
                if best is None or (not r.ok, r.err) > (not best.ok, best.err):
                    rows[r.function] = r
                print(
                    f"{r.function} [{r.case}] {r.output}: {r.err / EPS:.3g} eps, "
                    f"kappa {r.kappa:.3g}",
                    flush=True,
                )
    lines = [HEADER]
    for name in sorted(rows):
        r = rows[name]
        if r.err <= suite.TOL:
            bound = "<= 1e-12"
        elif r.ok:
            bound = f"<= {suite.COND_FACTOR} kappa eps"
        else:
            bound = "NOT MET"
        lines.append(
            f"| `{name}` | {r.err / EPS:.3g} | {r.case}: {r.output} | "
            f"{r.kappa:.3g} | {bound} |\n"
        )
    lines.append(FOOTER)
    Path(args.out).write_text("".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
