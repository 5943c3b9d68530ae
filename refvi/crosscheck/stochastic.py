"""Test a stochastic estimator against an exact expectation: a calibrated z-test.

A user's estimator of a value or gradient (a reparameterized ELBO gradient,
say) is called ``n_samples`` times with independent noise; the mean of the
draws of every entry is compared with refvi's exact value by the z-test of
``refvi.verify.montecarlo`` (one implementation), Bonferroni-adjusted over
all entries so that a correct estimator fails with probability at most
``false_failure_rate`` (by the normal approximation to the sample mean, which
the test assumes: budgets of a few hundred draws or more).

The test also states its power: with Bonferroni threshold c and standard
error se_j, an entry biased by b_j is rejected with probability at least
``power`` when |b_j| >= (c + Phi^{-1}(power)) se_j, the entry's smallest
detectable bias at this budget (the other tail is ignored, which only adds
power).
"""

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from scipy import stats

from refvi._validate import (
    as_float_array,
    check_callable,
    check_float,
    check_int,
    check_rng,
)
from refvi.crosscheck.case import Case
from refvi.crosscheck.compare import to_numpy
from refvi.verify.montecarlo import mc_mean, z_test

__all__ = ["EstimatorTest", "check_estimator"]

#: Default family-wise probability that a correct estimator fails.
FALSE_FAILURE_RATE = 1e-6
#: Default probability with which the detectable bias is detected.
POWER = 0.9


class EstimatorTest(NamedTuple):
    """Outcome of :func:`check_estimator`.

    Attributes
    ----------
    passed : bool
        Whether every |z| is within the threshold.
    z : dict of str -> ndarray
        z-scores (mean - exact) / se, per output with the output's shape.
    threshold : float
        The Bonferroni-adjusted |z| limit over all entries.
    mean, se : dict of str -> ndarray
        The Monte Carlo means and standard errors.
    exact : dict of str -> ndarray
    detectable_bias : dict of str -> ndarray
        Per entry, the smallest |bias| detected with probability ``power``.
    detectable_relative_bias : float
        The smallest r such that a bias of r |exact| in every entry is
        detected with probability ``power`` (min over entries of
        detectable_bias / |exact|).
    worst : tuple
        (output, index, z) of the largest |z|.
    n_samples : int
    false_failure_rate, power : float
    """

    passed: bool
    z: dict
    threshold: float
    mean: dict
    se: dict
    exact: dict
    detectable_bias: dict
    detectable_relative_bias: float
    worst: tuple
    n_samples: int
    false_failure_rate: float
    power: float

    def __str__(self):
        name, index, z = self.worst
        verdict = "passes" if self.passed else "FAILS"
        return (
            f"estimator {verdict}: worst entry {name!r} {list(index)}: z = {z:.3g} "
            f"(threshold {self.threshold:.3g}, false-failure rate "
            f"{self.false_failure_rate:g}, Bonferroni over "
            f"{sum(np.size(v) for v in self.z.values())} entries, "
            f"{self.n_samples} draws); a relative bias of "
            f"{self.detectable_relative_bias:.3g} is detected with probability "
            f"{self.power:g}"
        )


def _detectable_bias(se, threshold, power):
    """(threshold + Phi^{-1}(power)) * se: the bias a z-test at ``threshold``
    rejects with probability ``power`` (one tail)."""
    return (threshold + stats.norm.ppf(power)) * np.asarray(se, dtype=float)


def _as_dict(value, what):
    if isinstance(value, Mapping):
        return {k: to_numpy(v, f"{what}[{k!r}]") for k, v in value.items()}
    return {"value": to_numpy(value, what)}


def check_estimator(
    estimator,
    exact,
    n_samples,
    rng,
    *,
    noise_shape=None,
    false_failure_rate=FALSE_FAILURE_RATE,
    power=POWER,
):
    """z-test of the mean of ``n_samples`` draws of ``estimator`` against ``exact``.

    Parameters
    ----------
    estimator : callable
        ``estimator(eps)`` with standard-normal noise ``eps`` of
        ``noise_shape`` when that is given, else ``estimator(rng)`` with a
        ``numpy.random.Generator`` to draw its own noise from. Returns an
        array, or a dict of arrays (outputs by name).
    exact : array_like, dict of arrays, or Case
        The exact expectation; a Case gives its outputs (only those the
        estimator returns are tested).
    n_samples : int >= 2
        The budget: independent calls of ``estimator``.
    rng : numpy.random.Generator
    noise_shape : tuple of int, optional
    false_failure_rate : float in (0, 1)
        Family-wise probability that a correct estimator fails (default 1e-6).
    power : float in (0, 1)
        Probability at which the detectable bias is stated (default 0.9).

    Returns
    -------
    EstimatorTest
    """
    estimator = check_callable(estimator, "estimator")
    n_samples = check_int(n_samples, "n_samples", minimum=2)
    rng = check_rng(rng)
    alpha = check_float(false_failure_rate, "false_failure_rate", minimum=0.0)
    power = check_float(power, "power", minimum=0.0)
    for name, p in (("false_failure_rate", alpha), ("power", power)):
        if not 0.0 < p < 1.0:
            raise ValueError(f"{name} must be in (0, 1); got {p!r}")
    if isinstance(exact, Case):
        exact = exact.outputs
    if not isinstance(exact, Mapping):
        exact = {"value": exact}
    exact = {k: as_float_array(v, f"exact[{k!r}]") for k, v in exact.items()}
    draws = []
    for _ in range(n_samples):
        noise = rng if noise_shape is None else rng.standard_normal(noise_shape)
        draws.append(_as_dict(estimator(noise), "estimator's result"))
    names = list(draws[0])
    missing = [n for n in names if n not in exact]
    if missing:
        raise ValueError(
            f"exact has no entry {missing[0]!r} that estimator returns "
            f"(exact has {list(exact)})"
        )
    for name in names:
        if exact[name].shape != draws[0][name].shape:
            raise ValueError(
                f"estimator's {name!r} has shape {draws[0][name].shape}; exact "
                f"has {exact[name].shape}"
            )
    flat = np.stack([np.concatenate([d[n].ravel() for n in names]) for d in draws])
    if not np.all(np.isfinite(flat)):
        bad = int(np.argwhere(~np.isfinite(flat))[0, 0])
        raise ValueError(f"estimator returned a non-finite entry in draw {bad}")
    target = np.concatenate([exact[n].ravel() for n in names])
    estimate = mc_mean(flat)
    # two-sided, family-wise alpha: a single entry's n_sigma = Phi^{-1}(1 - alpha/2)
    result = z_test(estimate, target, n_sigma=float(stats.norm.isf(alpha / 2)))
    z = np.atleast_1d(result.z)
    bias = _detectable_bias(estimate.se, result.threshold, power)
    nonzero = target != 0
    relative = np.inf
    if nonzero.any():
        relative = float(np.min(bias[nonzero] / np.abs(target[nonzero])))
    sizes = np.cumsum([0] + [exact[n].size for n in names])
    split = {n: slice(sizes[i], sizes[i + 1]) for i, n in enumerate(names)}

    def unflat(v):
        return {n: np.asarray(v)[split[n]].reshape(exact[n].shape) for n in names}

    worst = int(np.argmax(np.abs(z)))
    owner = next(n for n in names if split[n].start <= worst < split[n].stop)
    index = np.unravel_index(worst - split[owner].start, exact[owner].shape)
    return EstimatorTest(
        passed=result.ok,
        z=unflat(z),
        threshold=result.threshold,
        mean=unflat(estimate.mean),
        se=unflat(estimate.se),
        exact={n: exact[n] for n in names},
        detectable_bias=unflat(bias),
        detectable_relative_bias=relative,
        worst=(owner, tuple(int(i) for i in index), float(z[worst])),
        n_samples=n_samples,
        false_failure_rate=alpha,
        power=power,
    )
