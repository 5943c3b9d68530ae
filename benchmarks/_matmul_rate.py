"""The numpy matmul rate that benchmarks print at start and end (the BLAS limit)."""

import time

import numpy as np


def gflops():
    """numpy matmul GFLOP/s on a 1024 x 1024 product (median of 5)."""
    a = np.random.default_rng(0).normal(size=(1024, 1024))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t)
    return 2 * 1024**3 / np.median(times) / 1e9
