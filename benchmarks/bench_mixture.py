"""EM for a full-covariance Gaussian mixture: refvi vs scikit-learn vs BLAS.

For each size, both libraries run the same number of EM iterations from
identical initial parameters, alternating in one process (warm-up first,
then the median of the repeats). Printed per size: seconds per iteration for
refvi and scikit-learn (scikit-learn's time includes the one extra E-step its
``fit`` does at the end), their ratio, the relative difference of the
log-likelihoods of the last two iterates, the peak memory of a 2-iteration
run of each (tracemalloc, which sees numpy's allocations; measured
separately from the timings), and the "BLAS limit": the time
of plain numpy matmuls with the same flop count as one iteration,
about 4 n K d^2 (the E-step product x @ [P_1 ... P_K], (n, d) @ (d, K d), plus
the M-step second moments, K products (d, n) @ (n, d)).

Usage:  python benchmarks/bench_mixture.py [--quick] [--threads T]

On a busy machine multi-threaded OpenBLAS spins and the timings mean little;
``--threads 1`` gives both libraries one thread.
"""

import argparse
import os
import time
import tracemalloc
import warnings

import numpy as np
from _matmul_rate import gflops
from scipy.linalg import cho_solve
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_info, threadpool_limits

from refvi.models import mixture_em

SIZES = [(100_000, 32, 16), (1_000_000, 16, 8)]


def make_problem(n, d, K, seed=0):
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.normal(size=(K, d))
    x = centres[rng.integers(K, size=n)] + rng.normal(size=(n, d))
    # identical start for both: weights, means and covariances from a random
    # hard assignment of a subsample (one M-step)
    sub = x[rng.choice(n, size=min(n, 20 * K * d), replace=False)]
    r = np.eye(K)[rng.integers(K, size=sub.shape[0])]
    init = mixture_em.m_step(sub, r, "full")
    return x, init


def run_refvi(x, init, n_iter):
    """Fitted model and the mean log p(x) of the last two parameter sets."""
    fit, trace = mixture_em.em(x, init, tol=0.0, max_iter=n_iter)
    return fit, trace.log_lik[-2:] / x.shape[0]


def run_sklearn(x, init, n_iter):
    """One ``fit`` of n_iter iterations (plus scikit-learn's final E-step)."""
    prec = np.stack([cho_solve((L, True), np.eye(init.d)) for L in init.L])
    sk = SkGaussianMixture(
        init.n_components,
        covariance_type="full",
        tol=0.0,
        max_iter=n_iter,
        init_params="random_from_data",
        weights_init=init.weights,
        means_init=init.means,
        precisions_init=prec,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol = 0
        sk.fit(x)
    # lower_bound_ is mean log p(x) of the parameters before the last M-step
    return sk, np.array([sk.lower_bound_, sk.score(x)])


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def peak_memory(fn, *args):
    """Peak bytes allocated during fn(*args), by tracemalloc (slows the run)."""
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def blas_limit(n, d, K, repeats=3):
    """Seconds for matmuls with one EM iteration's flops: about 4 n K d^2."""
    rng = np.random.default_rng(1)
    block = 1 << 15
    x = rng.normal(size=(block, d))
    P = rng.normal(size=(d, K * d))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for start in range(0, n, block):
            b = min(block, n - start)
            xb = x[:b]
            xb @ P  # E-step: 2 b d (K d) flops
            for _ in range(K):
                xb.T @ xb  # M-step: K times 2 b d^2 flops
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller n")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS/OpenMP threads for both libraries (default: unchanged)",
    )
    args = parser.parse_args()
    with threadpool_limits(args.threads):
        run(args)


def run(args):
    threads = {(i["internal_api"], i["num_threads"]) for i in threadpool_info()}
    print(
        f"threads (both libraries, same process): {sorted(threads)}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    print(f"numpy matmul at start: {gflops():.1f} GFLOP/s")
    for n, d, K in SIZES:
        if args.quick:
            n //= 10
        x, init = make_problem(n, d, K)
        it = args.iters
        run_refvi(x, init, 1)  # warm-up
        run_sklearn(x, init, 1)
        t_ref, t_sk = [], []
        for _ in range(args.repeats):
            (_, ll_ref), t = timed(run_refvi, x, init, it)
            t_ref.append(t / it)
            (_, ll_sk), t = timed(run_sklearn, x, init, it)
            t_sk.append(t / it)
        peak_ref = peak_memory(run_refvi, x, init, 2)
        peak_sk = peak_memory(run_sklearn, x, init, 2)
        blas = blas_limit(n, d, K)
        ref, sk = np.median(t_ref), np.median(t_sk)
        diff = np.max(np.abs(ll_ref - ll_sk) / np.abs(ll_sk))
        print(f"\nn={n} d={d} K={K}, {it} iterations, median of {args.repeats}")
        print(f"  refvi        {ref:8.4f} s/iter   peak {peak_ref / 2**20:8.1f} MiB")
        print(f"  scikit-learn {sk:8.4f} s/iter   peak {peak_sk / 2**20:8.1f} MiB")
        print(
            f"  BLAS limit   {blas:8.4f} s/iter   (4 n K d^2 = "
            f"{4 * n * K * d * d / 1e9:.2f} GFLOP)"
        )
        print(
            f"  sklearn / refvi = {sk / ref:.2f}x   refvi / BLAS = {ref / blas:.2f}x"
            f"   sklearn / BLAS = {sk / blas:.2f}x"
        )
        print(f"  relative log-likelihood difference (last two iterates): {diff:.2e}")
        print(
            f"  peak memory (2 iterations) refvi / sklearn = {peak_ref / peak_sk:.2f}"
        )
        del x
    print(f"\nnumpy matmul at end: {gflops():.1f} GFLOP/s")


if __name__ == "__main__":
    main()
