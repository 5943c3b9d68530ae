"""One gradient step of the linear VAE: refvi's handwritten gradients next to
PyTorch autograd and ``jax.jit(jax.value_and_grad)``, on the CPU, in one process.

The step (batch n = 1024, d = 784, k = 32, float64, one sample, analytic KL):
encoder q(z | x) = N(A x + c, diag(exp(2 log_std))), decoder
x | z ~ N(W z + mu, diag(psi)); the objective is sum_i [log p(x_i | z_i) -
KL(q(z | x_i) || N(0, I))] with z_i = A x_i + c + exp(log_std) * eps_i, and
the step computes it with its gradients w.r.t. (A, c, log_std, W, mu, psi).
refvi: ``refvi.inference.vae.elbo_and_grad(..., estimator="kl")``, argument
checks included. The parameter update itself (the same few vector operations
for everyone) is not timed.

Printed: median seconds per step of each contender (alternating, after a
warm-up, ``--repeats`` rounds of ``--inner`` calls each), their ratios, the
time of the step's five matmuls alone (the BLAS limit: x A^T, z W^T and the
backward's a W, a^T z, dm^T x), and the largest relative gradient difference
of each peer from refvi per parameter block. The numpy matmul rate and the
thread settings are printed at the start and the end. torch and jax are
optional (``pip install torch==2.13.0``, ``pip install jax jaxlib``); a
missing one is skipped with a note.

Usage::

    python benchmarks/bench_linear_vae.py [--n 1024] [--d 784] [--k 32]
                                          [--repeats 30] [--inner 5] [--threads T]
                                          [--clock wall|cpu]

``--clock cpu`` (with ``--threads 1`` only) times each contender by the CPU
time of this process (user + system, page faults included) instead of the
wall clock: on a machine shared with other jobs the wall clock also counts
the time the process waited for a core.
"""

import argparse
import os
import statistics
import time

import numpy as np
from _matmul_rate import gflops
from threadpoolctl import threadpool_info, threadpool_limits

from refvi.inference import vae
from refvi.inference.encoder import LinearEncoder
from refvi.models.linear_gaussian import LinearGaussian

LOG_2PI = float(np.log(2 * np.pi))
KEYS = ("A", "c", "log_std", "W", "mu", "psi")


def make_problem(rng, n, d, k):
    params = {
        "A": rng.normal(scale=d**-0.5, size=(k, d)),
        "c": rng.normal(scale=0.1, size=k),
        "log_std": rng.uniform(-1.0, 0.0, size=k),
        "W": rng.normal(scale=k**-0.5, size=(d, k)),
        "mu": rng.normal(scale=0.1, size=d),
        "psi": rng.uniform(0.5, 1.5, size=d),
    }
    return params, rng.normal(size=(n, d)), rng.normal(size=(1, n, k))


def refvi_step(params, x, eps):
    enc = LinearEncoder(params["A"], params["c"], log_std=params["log_std"])
    model = LinearGaussian(params["W"], params["mu"], params["psi"])

    def step():
        value, grads = vae.elbo_and_grad(enc, model, x, eps, estimator="kl")
        return float(value.sum()), grads

    return step


def torch_step(params, x, eps):
    import torch

    t = {key: torch.tensor(v, requires_grad=True) for key, v in params.items()}
    xt, et = torch.tensor(x), torch.tensor(eps[0])
    d = x.shape[1]

    def step():
        for v in t.values():
            v.grad = None
        m = xt @ t["A"].T + t["c"]
        std = torch.exp(t["log_std"])
        z = m + et * std
        r = xt - t["mu"] - z @ t["W"].T
        ll = -0.5 * (
            d * LOG_2PI + torch.log(t["psi"]).sum() + (r * r / t["psi"]).sum(1)
        )
        kl = 0.5 * (m * m + std * std - 1.0 - 2.0 * t["log_std"]).sum(1)
        value = (ll - kl).sum()
        value.backward()
        return float(value.detach()), {key: v.grad.numpy() for key, v in t.items()}

    return step


def jax_step(params, x, eps):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    d = x.shape[1]

    def objective(p, x, e):
        m = x @ p["A"].T + p["c"]
        std = jnp.exp(p["log_std"])
        z = m + e * std
        r = x - p["mu"] - z @ p["W"].T
        ll = -0.5 * (d * LOG_2PI + jnp.log(p["psi"]).sum() + (r * r / p["psi"]).sum(1))
        kl = 0.5 * (m * m + std * std - 1.0 - 2.0 * p["log_std"]).sum(1)
        return (ll - kl).sum()

    f = jax.jit(jax.value_and_grad(objective))
    p = {key: jnp.asarray(v) for key, v in params.items()}
    xj, ej = jnp.asarray(x), jnp.asarray(eps[0])

    def step():
        value, grads = f(p, xj, ej)
        value.block_until_ready()
        return float(value), {key: np.asarray(g) for key, g in grads.items()}

    return step


def matmuls_step(params, x, eps):
    """The step's five matmuls alone, on operands of the right shapes, each in
    the faster of its two BLAS layouts (a^T z as (z^T a)^T)."""
    A, W = params["A"], params["W"]
    z = x @ A.T
    a = x.copy()

    def step():
        x @ A.T  # encoder mean
        z @ W.T  # decoder mean
        a @ W  # d/dz
        z.T @ a  # d/dW, transposed
        z.T @ x  # d/dA (dm^T x)
        return None, None

    return step


def thread_note():
    blas = sorted({(i["internal_api"], i["num_threads"]) for i in threadpool_info()})
    note = f"numpy BLAS threads: {blas}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
    try:
        import torch

        note += f"; torch intra-op threads: {torch.get_num_threads()}"
    except ImportError:
        pass
    return note


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--d", type=int, default=784)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS and torch threads (1 also makes XLA single-threaded)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: this process's CPU time (needs --threads 1; for a busy machine)",
    )
    args = parser.parse_args()
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu needs --threads 1 (idle BLAS threads spin)")
    if args.threads == 1:
        # XLA's CPU thread pool is not BLAS: ask it for one thread before jax loads
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    if args.threads is not None:
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    with threadpool_limits(args.threads):
        run(args)


def run(args):
    rng = np.random.default_rng(args.seed)
    print(f"n = {args.n}, d = {args.d}, k = {args.k}, float64, one sample, analytic KL")
    print(thread_note())
    print(f"numpy matmul rate at start: {gflops():.1f} GFLOP/s")
    params, x, eps = make_problem(rng, args.n, args.d, args.k)

    steps = {
        "refvi": refvi_step(params, x, eps),
        "matmuls": matmuls_step(params, x, eps),
    }
    for name, maker in (("torch", torch_step), ("jax", jax_step)):
        try:
            steps[name] = maker(params, x, eps)
        except ImportError as err:
            print(
                f"{name}: skipped ({err}); install with "
                + (
                    "pip install torch==2.13.0"
                    if name == "torch"
                    else "pip install jax jaxlib"
                )
            )

    results = {name: step() for name, step in steps.items()}  # warm-up (and jit)
    for _ in range(3):
        for step in steps.values():
            step()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = clock()
            for _ in range(args.inner):
                step()
            times[name].append((clock() - start) / args.inner)
    med = {name: statistics.median(t) for name, t in times.items()}

    print(
        f"\nmedian {args.clock}-clock seconds per step over "
        f"{args.repeats} x {args.inner} calls:"
    )
    for name, t in med.items():
        print(f"  {name:8s} {t * 1e3:8.3f} ms")
    print("ratios (time / refvi's):")
    for name in med:
        if name != "refvi":
            print(f"  {name:8s} {med[name] / med['refvi']:8.2f}")

    ref_value, ref_grads = results["refvi"]
    for name in ("torch", "jax"):
        if name not in results:
            continue
        value, grads = results[name]
        worst = {
            key: float(
                np.max(np.abs(grads[key] - ref_grads[key]))
                / np.max(np.abs(ref_grads[key]))
            )
            for key in KEYS
        }
        print(
            f"{name}: value rel. diff {abs(value - ref_value) / abs(ref_value):.2e}; "
            "largest gradient difference per block (relative to the block's max): "
            + ", ".join(f"{key} {err:.1e}" for key, err in worst.items())
        )
    print(thread_note())
    print(f"numpy matmul rate at end: {gflops():.1f} GFLOP/s")


if __name__ == "__main__":
    main()
