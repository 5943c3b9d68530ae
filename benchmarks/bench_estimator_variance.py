"""Variance of the ELBO gradient estimators, per parameter block, at and away
from the exact posterior.

Model: factor analysis z ~ N(0, I_k), x | z ~ N(W z + mu, diag(psi)) with
random parameters (d = 5, k = 2), n = 20 data points drawn from it. q_i =
N(m_i, L L^T) with a full shared factor L:

- "at the posterior": m_i, L the exact posterior p(z | x_i) (LG.5)-(LG.6);
- "away": m_i + 0.5 and 1.5 L.

For each estimator of ``refvi.inference.estimators`` the script draws S
single-sample estimates (``per_sample=True``) and prints, per block, the
total variance sum_entries Var[g] of one sample's gradient (of the ELBO summed
over the data), with the Monte Carlo bias |mean - analytic| / se of the worst
entry as a sanity column (the s.e. floored at 1e-12 of the block's scale,
so a zero-variance block shows its rounding error in units of that). The
path-derivative estimator's q-gradients have zero variance at the posterior
(Roeder et al. 2017), and so do the score function's with the exact ELBO as
baseline (f(z) = log p(x) there); without a baseline they are orders of
magnitude larger than the pathwise ones. SGVB-A and the analytic-entropy form
have identical gradients (for a Gaussian q the total derivative of
log q(m + L eps) is that of -H[q]).

Usage::

    python benchmarks/bench_estimator_variance.py [--samples 20000] [--seed 0]
"""

import argparse

import numpy as np

from refvi.inference import estimators as est
from refvi.inference.encoder import QParams
from refvi.models import linear_gaussian as lg

BLOCKS = ("m_q", "L_q", "W", "mu", "psi")


def problem(rng, n=20, d=5, k=2):
    model = lg.LinearGaussian(
        rng.normal(size=(d, k)), rng.normal(size=d), rng.uniform(0.3, 1.0, size=d)
    )
    z = rng.normal(size=(n, k))
    x = z @ model.W.T + model.mu + rng.normal(size=(n, d)) * np.sqrt(model.psi)
    post = lg.posterior(model, x)
    return model, x, QParams(post.m, None, post.L_S)


def estimators(model, x, q):
    analytic_elbo = est.elbo_analytic_and_grad(model, x, q)[0]
    return {
        "reparam, analytic KL (SGVB-B)": est.ESTIMATORS["kl"],
        "reparam, analytic entropy": est.ESTIMATORS["entropy"],
        "reparam, sampled log q (SGVB-A)": est.ESTIMATORS["sampled"],
        "path derivative (STL)": est.ESTIMATORS["path"],
        "score function": est.ESTIMATORS["score"],
        "score function + baseline": lambda *a, **kw: est.elbo_score_and_grad(
            *a, baseline=analytic_elbo, **kw
        ),
    }


def table(model, x, q, eps, title):
    exact = est.elbo_analytic_and_grad(model, x, q)[1]
    S = eps.shape[0]
    print(f"\n{title}: total variance of one sample's gradient, per block")
    print(f"{'estimator':34s}" + "".join(f"{b:>11s}" for b in BLOCKS) + "  max|z|")
    for name, fn in estimators(model, x, q).items():
        _, grads = fn(model, x, q, eps, per_sample=True)
        cells, worst = [], 0.0
        for block in BLOCKS:
            g = grads[block].reshape(S, -1)
            cells.append(np.sum(np.var(g, axis=0, ddof=1)))
            se = np.std(g, axis=0, ddof=1) / np.sqrt(S)
            diff = np.abs(g.mean(axis=0) - exact[block].ravel())
            floor = 1e-12 * max(1.0, float(np.max(np.abs(exact[block]))))
            worst = max(worst, float(np.max(diff / np.maximum(se, floor))))
        print(f"{name:34s}" + "".join(f"{c:11.3e}" for c in cells) + f"  {worst:5.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    model, x, q = problem(rng)
    eps = rng.normal(size=(args.samples, x.shape[0], model.k))
    print(f"n = {x.shape[0]}, d = {model.d}, k = {model.k}, S = {args.samples}")
    table(model, x, q, eps, "q = exact posterior")
    away = QParams(q.m + 0.5, None, 1.5 * q.L)
    table(model, x, away, eps, "q away from the posterior (m + 0.5, 1.5 L)")


if __name__ == "__main__":
    main()
