"""A batch of Gaussian KLs: refvi.gaussian.kl vs torch.distributions.kl_divergence.

10,000 pairs of full-covariance normals in d = 16 (distinct mean and Cholesky
factor for every q and every p). Two measurements, alternating refvi and
torch in one process after a warm-up, medians of the repeats:

* forward: construct both distributions and compute the 10,000 KL(q || p)
  (refvi ``gaussian.kl``; torch ``kl_divergence`` of two
  ``MultivariateNormal(loc, scale_tril=...)`` under ``torch.no_grad``);
* forward + backward: the same and the gradients w.r.t. both means and both
  Cholesky factors (refvi ``gaussian.kl_and_grad``; torch autograd of
  ``kl.sum()``).

torch is given ``validate_args=False`` (refvi always validates its input, so
its times include that). The values and gradients of the two are compared
(largest relative difference, which should be near 1e-13). Printed: thread
settings, the numpy matmul rate at start and end (if they differ much the
machine was busy), milliseconds for each, and the ratios torch / refvi.

Then a floor for the forward pass with numpy alone (timed the same way):
reading the four inputs once (a sum of each), copying them (a frozen
``Gaussian`` keeps read-only private copies), refvi's stacked triangular
solve alone (``gaussian._solve_tril`` of L_p against [mean_q - mean_p | L_q],
the one solve the forward pass needs), and one batched product
(N, d, d) @ (N, d, d + 1): more arithmetic than that solve, in a single
numpy call. read + copy + product is what the forward pass cannot go below
with numpy; torch's forward time over it bounds the ratio reachable.

Usage:  python benchmarks/bench_kl.py [--n 10000] [--d 16] [--repeats 15]
torch is optional (``pip install torch==2.13.0``); without it only refvi is timed.
"""

import argparse
import os
import time

import numpy as np
from _matmul_rate import gflops
from threadpoolctl import threadpool_info

from refvi import gaussian

try:
    import torch
    from torch.distributions import MultivariateNormal, kl_divergence
except ImportError:  # torch is optional
    torch = None


def make_pairs(n, d, seed=0):
    """Means and well-conditioned lower Cholesky factors for n pairs (q, p)."""
    rng = np.random.default_rng(seed)

    def factors():
        L = np.tril(0.3 * rng.normal(size=(n, d, d)), k=-1)
        return L + np.exp(0.3 * rng.normal(size=(n, d)))[..., None] * np.eye(d)

    return rng.normal(size=(n, d)), factors(), rng.normal(size=(n, d)), factors()


def refvi_forward(mq, Lq, mp, Lp):
    q = gaussian.Gaussian(mq, scale_tril=Lq)
    p = gaussian.Gaussian(mp, scale_tril=Lp)
    return gaussian.kl(q, p)


def refvi_backward(mq, Lq, mp, Lp):
    q = gaussian.Gaussian(mq, scale_tril=Lq)
    p = gaussian.Gaussian(mp, scale_tril=Lp)
    value, grads = gaussian.kl_and_grad(q, p)
    return value, [
        grads[k] for k in ("mean_q", "scale_tril_q", "mean_p", "scale_tril_p")
    ]


def torch_forward(mq, Lq, mp, Lp):
    with torch.no_grad():
        q = MultivariateNormal(mq, scale_tril=Lq, validate_args=False)
        p = MultivariateNormal(mp, scale_tril=Lp, validate_args=False)
        return kl_divergence(q, p)


def torch_backward(mq, Lq, mp, Lp):
    leaves = [t.detach().requires_grad_(True) for t in (mq, Lq, mp, Lp)]
    q = MultivariateNormal(leaves[0], scale_tril=leaves[1], validate_args=False)
    p = MultivariateNormal(leaves[2], scale_tril=leaves[3], validate_args=False)
    value = kl_divergence(q, p)
    value.sum().backward()
    return value, [leaf.grad for leaf in leaves]


def rel_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def floor(arrays, repeats):
    """Median seconds of the forward pass's unavoidable numpy work (docstring)."""
    mq, Lq, mp, Lp = arrays
    rhs = np.concatenate([(mq - mp)[..., None], Lq], axis=-1)
    return alternate(
        [
            ("read the inputs", lambda: [a.sum() for a in arrays]),
            ("copy the inputs", lambda: [a.copy() for a in arrays]),
            (
                "refvi's stacked solve",
                lambda: gaussian._solve_tril(Lp, rhs, lower_rhs=True),
            ),
            ("one product (N,d,d)@(N,d,d+1)", lambda: Lp @ rhs),
        ],
        repeats,
    )


def alternate(contenders, repeats):
    """Median seconds of each (name, fn), run alternately after one warm-up each."""
    for _, fn in contenders:
        fn()
    times = {name: [] for name, _ in contenders}
    for _ in range(repeats):
        for name, fn in contenders:
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    pools = {(p["internal_api"], p["num_threads"]) for p in threadpool_info()}
    print(f"numpy BLAS pools (api, threads): {sorted(pools)}")
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    if torch is not None:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    else:
        print("torch not installed: refvi only (pip install torch==2.13.0)")
    print(f"numpy matmul at start: {gflops():.1f} GFLOP/s")

    arrays = make_pairs(args.n, args.d)
    print(f"{args.n} pairs in d = {args.d}, {args.repeats} repeats (median)")
    contenders = {
        "forward": [("refvi", lambda: refvi_forward(*arrays))],
        "forward+backward": [("refvi", lambda: refvi_backward(*arrays))],
    }
    if torch is not None:
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
        contenders["forward"].append(("torch", lambda: torch_forward(*tensors)))
        contenders["forward+backward"].append(
            ("torch", lambda: torch_backward(*tensors))
        )
        value, grads = refvi_backward(*arrays)
        t_value, t_grads = torch_backward(*tensors)
        forward = rel_diff(refvi_forward(*arrays), torch_forward(*tensors).numpy())
        diffs = [f"KL {rel_diff(value, t_value.detach().numpy()):.1e}"]
        diffs.append(f"KL forward only {forward:.1e}")
        names = ("mean_q", "L_q", "mean_p", "L_p")
        for name, g, t in zip(names, grads, t_grads, strict=True):
            t = np.tril(t.numpy()) if g.ndim == 3 else t.numpy()
            diffs.append(f"d/d{name} {rel_diff(g, t):.1e}")
        print("largest relative difference refvi vs torch: " + ", ".join(diffs))
    for what, cs in contenders.items():
        med = alternate(cs, args.repeats)
        line = ", ".join(f"{name} {1e3 * t:.1f} ms" for name, t in med.items())
        if "torch" in med:
            line += f"; torch / refvi = {med['torch'] / med['refvi']:.2f}x"
        print(f"{what}: {line}")
        if what == "forward":
            t_forward = med
    low = floor(arrays, args.repeats)
    print("floor: " + ", ".join(f"{k} {1e3 * t:.1f} ms" for k, t in low.items()))
    bound = sum(t for k, t in low.items() if k != "refvi's stacked solve")
    line = f"read + copy + one product = {1e3 * bound:.1f} ms"
    if "torch" in t_forward:
        line += f"; torch forward / that = {t_forward['torch'] / bound:.2f}x"
    print(line)
    print(f"numpy matmul at end: {gflops():.1f} GFLOP/s")


if __name__ == "__main__":
    main()
