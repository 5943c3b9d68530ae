"""Variance of ELBO gradient estimators against the distance of q from the
exact posterior (refvi.inference.estimators).

One datum x of a linear-Gaussian model (k = 2, d = 4). q = N(m* + t v,
(1 + t/2)^2 S*) moves away from the exact posterior N(m*, S*): its mean along
a unit direction v by t = 0 .. 2, its scale by the factor 1 + t/2 (with the
posterior's covariance kept, the path derivative's gradient w.r.t. m_q would
be S*^{-1}(m* - m_q) for every draw: no variance at any t).
For each estimator, S single-draw estimates of the gradient with respect to
q's mean m_q give its variance (the trace of the covariance, per draw) and
its mean, which must match the closed-form gradient. At t = 0 the path
derivative is exactly zero for every draw, and so is the score function with
the baseline b = ELBO (then f(z) - b = log p(x, z) - log q(z) - log p(x) = 0).
"""

from typing import NamedTuple

import numpy as np

from refvi.figures._plot import new_figure
from refvi.inference import estimators as est
from refvi.inference.encoder import QParams
from refvi.models import linear_gaussian as lg

__all__ = ["ESTIMATORS", "VarianceCurves", "data", "draw", "per_draw_gradients"]

#: Name in the figure -> per-draw gradients of ELBO w.r.t. m_q, (S, 1, k).
ESTIMATORS = (
    "reparameterization",
    "path derivative",
    "score function",
    "score function, baseline",
)


class VarianceCurves(NamedTuple):
    """Per estimator (rows, in ``ESTIMATORS`` order) and distance t (columns):
    the per-draw variance of the m_q gradient and its Monte Carlo mean."""

    distance: np.ndarray  # (T,)
    variance: np.ndarray  # (4, T)
    mean: np.ndarray  # (4, T, k)
    se: np.ndarray  # (4, T, k)
    analytic: np.ndarray  # (T, k) closed-form gradient w.r.t. m_q
    n_draws: int


def _setting():
    rng = np.random.default_rng(5)
    d, k = 4, 2
    model = lg.LinearGaussian(
        rng.standard_normal((d, k)), rng.standard_normal(d), rng.uniform(0.3, 1.0, d)
    )
    x = rng.standard_normal((1, d))
    post = lg.posterior(model, x)
    v = np.array([1.0, 1.0]) / np.sqrt(2.0)
    return model, x, post.m, post.L_S, v


def per_draw_gradients(model, x, q, eps):
    """{estimator: per-draw gradient w.r.t. m_q, shape (S, 1, k)}."""
    elbo = est.elbo_analytic_and_grad(model, x, q)[0]
    kw = dict(per_sample=True)
    return {
        "reparameterization": est.elbo_reparam_and_grad(
            model, x, q, eps, form="entropy", **kw
        )[1]["m_q"],
        "path derivative": est.elbo_path_derivative_and_grad(model, x, q, eps, **kw)[1][
            "m_q"
        ],
        "score function": est.elbo_score_and_grad(model, x, q, eps, **kw)[1]["m_q"],
        "score function, baseline": est.elbo_score_and_grad(
            model, x, q, eps, baseline=elbo, **kw
        )[1]["m_q"],
    }


def data(distances=None, n_draws=4000):
    """The curves for t on a grid (default 0 .. 2, 21 points)."""
    t = np.linspace(0.0, 2.0, 21) if distances is None else np.asarray(distances)
    model, x, m_star, L_star, v = _setting()
    rng = np.random.default_rng(6)
    k = m_star.shape[1]
    variance = np.empty((len(ESTIMATORS), t.size))
    mean = np.empty((len(ESTIMATORS), t.size, k))
    se = np.empty_like(mean)
    analytic = np.empty((t.size, k))
    for j, tj in enumerate(t):
        q = QParams(m_star + tj * v, L=(1 + tj / 2) * L_star)
        analytic[j] = est.elbo_analytic_and_grad(model, x, q)[1]["m_q"][0]
        eps = rng.standard_normal((n_draws, 1, k))
        grads = per_draw_gradients(model, x, q, eps)
        for i, name in enumerate(ESTIMATORS):
            g = grads[name][:, 0, :]
            variance[i, j] = np.sum(np.var(g, axis=0, ddof=1))
            mean[i, j] = g.mean(axis=0)
            se[i, j] = g.std(axis=0, ddof=1) / np.sqrt(n_draws)
    return VarianceCurves(t, variance, mean, se, analytic, n_draws)


def draw(curves):
    fig, ax = new_figure(size=(6.4, 4.2))
    floor = 1e-20
    for i, name in enumerate(ESTIMATORS):
        style = "-" if i < 2 else "--"
        ax.semilogy(
            curves.distance,
            np.maximum(curves.variance[i], floor),
            style,
            marker="o",
            ms=3,
            label=name,
        )
    ax.axhline(floor, color="0.6", lw=0.8, ls=":")
    ax.annotate(
        "exactly 0 at the posterior\n(drawn at 1e-20)",
        (0.0, floor),
        xytext=(0.3, 1e-14),
        arrowprops=dict(arrowstyle="->", color="0.4"),
        fontsize=8,
    )
    ax.set_xlabel(
        "distance t from the posterior (mean moved by t, scale times 1 + t/2)"
    )
    ax.set_ylabel("variance of one draw of ∇_m ELBO (trace)")
    ax.set_title("ELBO gradient estimators, linear-Gaussian model (k = 2)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
