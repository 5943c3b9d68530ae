"""Figures of refvi's results (``refvi figures``).

Each figure is two functions: one computes its data (numpy only, checked by
tests), the other draws them with matplotlib, the optional ``plot`` extra,
imported only then. ``FIGURES`` lists them by name.
"""

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from refvi.figures import (
    aggregate,
    em_trace,
    estimator_variance,
    linear_vae,
    mixture_kl,
)
from refvi.figures._plot import MatplotlibMissing, pyplot, save

__all__ = ["FIGURES", "Figure", "MatplotlibMissing", "render"]


class Figure(NamedTuple):
    """A named figure: ``draw(data())`` is a matplotlib figure."""

    name: str
    about: str
    data: Callable
    draw: Callable


def _em_traces():
    return [em_trace.factor_analysis_data(), em_trace.mixture_data()]


FIGURES = {
    f.name: f
    for f in (
        Figure(
            "em_trace",
            "EM per half-step for factor analysis and a Gaussian mixture: "
            "the E-step closes the KL gap, the M-step raises F and log p(x)",
            _em_traces,
            em_trace.draw,
        ),
        Figure(
            "mixture_kl",
            "KL from a two-component mixture to a Gaussian against the "
            "separation: quadrature, Monte Carlo, bounds, D_var",
            mixture_kl.data,
            mixture_kl.draw,
        ),
        Figure(
            "aggregated_posterior",
            "the aggregated posterior of a 2-D linear VAE against the prior for "
            "the exact-posterior, a mean-field and the collapsed encoder",
            aggregate.data,
            aggregate.draw,
        ),
        Figure(
            "estimator_variance",
            "variance of ELBO gradient estimators (reparameterization, path "
            "derivative, score function with and without baseline) against the "
            "distance from the exact posterior",
            estimator_variance.data,
            estimator_variance.draw,
        ),
        Figure(
            "vae_training",
            "the linear VAE's ELBO gap closing while it trains, with the pPCA "
            "maximum of log p(x) as a line",
            linear_vae.training_data,
            linear_vae.draw_training,
        ),
        Figure(
            "posterior_collapse",
            "the linear VAE's optimum as the noise variance crosses the "
            "eigenvalues: which latent directions collapse",
            linear_vae.collapse_data,
            linear_vae.draw_collapse,
        ),
    )
}


def render(name, out):
    """Compute and draw figure ``name``; write ``out/<name>.png``; its path."""
    if name not in FIGURES:
        raise ValueError(
            f"unknown figure {name!r}; the figures are {', '.join(FIGURES)}"
        )
    pyplot()  # MatplotlibMissing before any work
    figure = FIGURES[name]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    save(figure.draw(figure.data()), path)
    return path
