"""Monte Carlo estimates with standard errors, and z-tests against exact values.

A Monte Carlo check in refvi draws samples at a fixed ``default_rng(seed)``,
forms :func:`mc_mean` and asserts with :func:`assert_z_test` that the exact
value lies within ``n_sigma`` standard errors (Bonferroni-adjusted over the
entries of a vector estimate).
"""

from typing import NamedTuple

import numpy as np
from scipy.special import ndtr, ndtri

from refvi._validate import as_float_array, check_int, check_positive

__all__ = [
    "MCEstimate",
    "ZTest",
    "mc_mean",
    "z_test",
    "assert_z_test",
]


class MCEstimate(NamedTuple):
    """A Monte Carlo mean with its standard error.

    Attributes
    ----------
    mean : float or ndarray
        Sample mean.
    se : float or ndarray
        Standard error of the mean, ``std(ddof=1) / sqrt(n)``, same shape.
    n : int
        Number of samples.
    """

    mean: object
    se: object
    n: int


class ZTest(NamedTuple):
    """Outcome of :func:`z_test`.

    Attributes
    ----------
    z : float or ndarray
        ``(mean - target) / se`` elementwise.
    threshold : float
        Largest acceptable ``|z|`` after the Bonferroni adjustment.
    ok : bool
        Whether every ``|z| <= threshold``.
    """

    z: object
    threshold: float
    ok: bool


def mc_mean(samples, axis=0):
    """Sample mean and standard error along ``axis``.

    ``mean = sum_i x_i / n``, ``se = s / sqrt(n)`` with ``s`` the sample
    standard deviation (``ddof=1``). The other axes are kept: samples of
    shape ``(n, k)`` give a ``(k,)`` estimate.

    Parameters
    ----------
    samples : array_like
        Finite samples, at least 2 along ``axis``.
    axis : int
        The sample axis (default 0).

    Returns
    -------
    MCEstimate
    """
    samples = as_float_array(samples, "samples")
    axis = check_int(axis, "axis")
    if not -samples.ndim <= axis < samples.ndim:
        raise ValueError(
            f"axis {axis} is out of range for samples of shape {samples.shape}"
        )
    n = samples.shape[axis]
    if n < 2:
        raise ValueError(
            f"samples must hold at least 2 samples along axis {axis} for a "
            f"standard error; got shape {samples.shape}"
        )
    mean = np.mean(samples, axis=axis)[()]
    se = (np.std(samples, axis=axis, ddof=1) / np.sqrt(n))[()]
    return MCEstimate(mean, se, n)


def _check_estimate(estimate):
    """The finite mean and non-negative se (of the mean's shape) of ``estimate``."""
    mean = as_float_array(estimate.mean, "estimate.mean")
    se = as_float_array(estimate.se, "estimate.se", shape=mean.shape)
    if np.any(se < 0):
        raise ValueError(f"estimate.se must be non-negative; got min {se.min():.3g}")
    check_int(estimate.n, "estimate.n", minimum=1)
    return mean, se


def z_test(estimate, target, *, n_sigma=5.0):
    """z-scores of a Monte Carlo estimate against exact values, Bonferroni-adjusted.

    ``z = (mean - target) / se`` elementwise (``0`` where ``se = 0`` and
    ``mean == target``, ``+-inf`` where ``se = 0`` and they differ). With ``m``
    entries, each is tested at the two-sided level that a single ``n_sigma``
    test has, divided by ``m``:

        threshold = Phi^{-1}(1 - Phi(-n_sigma) / m),

    so the family-wise false-alarm rate stays below that of one ``n_sigma``
    test, and a scalar test uses exactly ``n_sigma``.

    Parameters
    ----------
    estimate : MCEstimate
        From :func:`mc_mean`.
    target : float or array_like
        Exact values, broadcastable to ``estimate.mean``.
    n_sigma : float
        Standard errors allowed for a single entry (default 5).

    Returns
    -------
    ZTest
        ``z``, ``threshold`` and ``ok = all(|z| <= threshold)``.
    """
    if not isinstance(estimate, MCEstimate):
        raise TypeError(
            "estimate must be an MCEstimate (from mc_mean); got "
            f"{type(estimate).__name__}"
        )
    n_sigma = float(check_positive(n_sigma, "n_sigma"))
    mean, se = _check_estimate(estimate)
    target = as_float_array(target, "target")
    try:
        diff = mean - np.broadcast_to(target, mean.shape)
    except ValueError:
        raise ValueError(
            f"target of shape {target.shape} does not broadcast to the estimate's "
            f"shape {mean.shape}"
        ) from None
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.sign(diff) * np.inf)
    z = np.where((se == 0) & (diff == 0), 0.0, z)[()]
    # two-sided tail P(|Z| > n_sigma) split over the entries (Bonferroni):
    # threshold = isf(sf(n_sigma) / m) with sf(t) = ndtr(-t), isf(p) = -ndtri(p)
    threshold = float(-ndtri(ndtr(-n_sigma) / np.size(z)))
    return ZTest(z, threshold, bool(np.all(np.abs(z) <= threshold)))


def assert_z_test(estimate, target, *, n_sigma=5.0):
    """Run :func:`z_test`; on failure raise AssertionError naming the worst entry.

    Returns the :class:`ZTest` when it passes.
    """
    result = z_test(estimate, target, n_sigma=n_sigma)
    if not result.ok:
        abs_z = np.abs(np.asarray(result.z))
        idx = np.unravel_index(np.argmax(abs_z), abs_z.shape)
        target = np.broadcast_to(np.asarray(target, dtype=float), abs_z.shape)
        raise AssertionError(
            f"z-test failed: worst entry {tuple(int(i) for i in idx)}: Monte Carlo "
            f"mean {np.asarray(estimate.mean)[idx]:.10g} +- "
            f"{np.asarray(estimate.se)[idx]:.3g} (n = {estimate.n}) vs target "
            f"{target[idx]:.10g}, z = {np.asarray(result.z)[idx]:.3g}, beyond "
            f"{result.threshold:.3g} ({n_sigma:g} sigma, Bonferroni over "
            f"{abs_z.size} entries)"
        )
    return result
