"""KL from a two-component mixture to one Gaussian against the separation of
its components: quadrature, Monte Carlo, the bounds and D_var
(derivations/mixture_kl.md).

q_s = 1/2 N(-s/2, 1) + 1/2 N(s/2, 1) in one dimension and p = N(0, 1 + s^2/4),
the Gaussian with q_s's mean and variance. At s = 0 the two are equal and every
route gives 0; as s grows q_s becomes bimodal and KL(q_s || p) grows.
"""

from typing import NamedTuple

import numpy as np

from refvi import mixture_kl
from refvi.figures._plot import new_figure
from refvi.gaussian import Gaussian
from refvi.models.mixture import GaussianMixture

__all__ = ["MixtureKLCurves", "data", "draw", "pair"]


class MixtureKLCurves(NamedTuple):
    """Each route's KL(q_s || p) at each separation s."""

    separation: np.ndarray
    quadrature: np.ndarray
    quadrature_error: np.ndarray
    montecarlo: np.ndarray
    montecarlo_se: np.ndarray
    n_samples: int
    lower: np.ndarray  # Durrieu-Thiran-Kelly lower bound
    upper: np.ndarray  # Durrieu-Thiran-Kelly upper bound
    variational_upper: np.ndarray  # Hershey-Olsen D_varUB
    variational: np.ndarray  # Hershey-Olsen D_var, not a bound


def pair(s):
    """(q_s, p) for separation ``s``."""
    q = GaussianMixture(
        np.array([0.5, 0.5]), np.array([[-s / 2], [s / 2]]), np.ones((2, 1, 1))
    )
    return q, Gaussian(np.zeros(1), cov=np.array([[1.0 + s * s / 4]]))


def data(separations=None, n_samples=4000):
    """The curves on a grid of separations (default 0 .. 6, 25 points)."""
    s = np.linspace(0.0, 6.0, 25) if separations is None else np.asarray(separations)
    rng = np.random.default_rng(2)
    rows = []
    for value in s:
        q, p = pair(value)
        quad = mixture_kl.kl_quadrature(q, p, order=40)
        mc = mixture_kl.kl_montecarlo(q, p, rng, n_samples)
        bounds = mixture_kl.kl_bounds(q, p)
        rows.append(
            (
                quad.value,
                quad.error,
                mc.mean,
                mc.se,
                bounds.lower,
                bounds.upper,
                mixture_kl.kl_variational_upper_bound(q, p),
                mixture_kl.kl_variational(q, p),
            )
        )
    cols = np.array(rows, dtype=float).T
    return MixtureKLCurves(s, cols[0], cols[1], cols[2], cols[3], n_samples, *cols[4:])


def draw(curves):
    """Every route against the separation, the bounds as a band."""
    fig, ax = new_figure(size=(6.4, 4.2))
    s = curves.separation
    ax.fill_between(s, curves.lower, curves.upper, color="C0", alpha=0.15)
    ax.plot(s, curves.lower, "-", color="C0", lw=1, label="lower / upper bound")
    ax.plot(s, curves.upper, "-", color="C0", lw=1)
    ax.plot(s, curves.variational_upper, ":", color="C4", label="D_varUB (bound)")
    ax.plot(s, curves.variational, "--", color="C3", label="D_var (not a bound)")
    ax.plot(s, curves.quadrature, "-", color="k", lw=2, label="quadrature")
    ax.errorbar(
        s,
        curves.montecarlo,
        yerr=2 * curves.montecarlo_se,
        fmt="o",
        ms=3,
        color="C2",
        label=f"Monte Carlo ± 2 s.e. (n = {curves.n_samples})",
    )
    ax.set_xlabel("separation s of the two components of q")
    ax.set_ylabel("KL(q ‖ p)")
    ax.set_title("q = ½N(−s/2, 1) + ½N(s/2, 1),  p = N(0, 1 + s²/4)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
