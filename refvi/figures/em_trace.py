"""EM as coordinate ascent on the ELBO, seen per half-step (derivations/em.md).

For factor analysis and for a Gaussian mixture, exact EM from a poor start.
After the E-step of iteration t the bound is tight, F(q_t, theta_t) =
log p(x; theta_t) (gap zero); after the M-step F(q_t, theta_{t+1}) has gone
up and log p(x; theta_{t+1}) has gone up at least as much, the difference
being KL(q_t || p(z | x; theta_{t+1})) >= 0.
"""

from typing import NamedTuple

import numpy as np

from refvi.figures._plot import new_figure
from refvi.models import linear_gaussian_em, mixture_em
from refvi.models.linear_gaussian import LinearGaussian
from refvi.models.mixture import GaussianMixture

__all__ = ["EMHalfSteps", "draw", "factor_analysis_data", "half_steps", "mixture_data"]


class EMHalfSteps(NamedTuple):
    """Totals over the data after each half-step s = 0 .. 2T-1 (per datum).

    Even s = 2t: after the E-step of iteration t; odd s = 2t + 1: after its
    M-step. ``gap = log_lik - elbo`` = sum_i KL(q_i || p(z | x_i)).
    """

    title: str
    step: np.ndarray  # "E" or "M"
    log_lik: np.ndarray
    elbo: np.ndarray
    gap: np.ndarray


def half_steps(trace, title, n):
    """``EMHalfSteps`` per datum from an ``refvi.models.em.EMTrace`` of n data."""
    T = trace.n_iter
    log_lik = np.empty(2 * T)
    elbo = np.empty(2 * T)
    log_lik[0::2], log_lik[1::2] = trace.log_lik[:-1], trace.log_lik[1:]
    elbo[0::2], elbo[1::2] = trace.elbo_e, trace.elbo_m
    step = np.array(["E", "M"] * T)
    return EMHalfSteps(title, step, log_lik / n, elbo / n, (log_lik - elbo) / n)


def factor_analysis_data(n_iter=12):
    """EM for factor analysis (d = 6, k = 2, n = 400) from a poor start."""
    rng = np.random.default_rng(0)
    d, k, n = 6, 2, 400
    truth = LinearGaussian(
        rng.standard_normal((d, k)), rng.standard_normal(d), rng.uniform(0.2, 1.0, d)
    )
    z = rng.standard_normal((n, k))
    x = z @ truth.W.T + truth.mu + rng.standard_normal((n, d)) * np.sqrt(truth.psi)
    start = LinearGaussian(0.1 * rng.standard_normal((d, k)), np.zeros(d), np.ones(d))
    _, trace = linear_gaussian_em.em(x, start, tol=0.0, max_iter=n_iter)
    return half_steps(trace, "factor analysis (d = 6, k = 2)", n)


def mixture_data(n_iter=12):
    """EM for a full-covariance Gaussian mixture (K = 3, d = 2, n = 450) from
    all three means near the data's centre."""
    rng = np.random.default_rng(1)
    centres = np.array([[-3.0, 0.0], [3.0, 0.5], [0.0, 3.5]])
    x = np.concatenate([c + rng.standard_normal((150, 2)) for c in centres])
    start = GaussianMixture(
        np.full(3, 1 / 3),
        x.mean(0) + 0.3 * rng.standard_normal((3, 2)),
        np.repeat(2.0 * np.eye(2)[None], 3, axis=0),
    )
    _, trace = mixture_em.em(x, start, tol=0.0, max_iter=n_iter)
    return half_steps(trace, "Gaussian mixture (K = 3, d = 2)", x.shape[0])


def draw(data_list):
    """Two rows per model: log p(x) and F per half-step; the KL gap."""
    fig, axes = new_figure(2, len(data_list), size=(5.2 * len(data_list), 6.2))
    axes = np.atleast_2d(axes).reshape(2, -1)
    for col, data in enumerate(data_list):
        s = np.arange(data.log_lik.shape[0]) / 2
        top, bottom = axes[0, col], axes[1, col]
        top.plot(s, data.log_lik, "o-", color="C0", label="log p(x) / n")
        top.plot(s, data.elbo, "s--", color="C1", ms=4, label="F(q, θ) / n")
        top.set_title(data.title)
        top.set_ylabel("per datum")
        top.legend(loc="lower right")
        floor = 1e-16
        gap = np.maximum(np.abs(data.gap), floor)
        e, m = data.step == "E", data.step == "M"
        bottom.semilogy(s, gap, "-", color="0.7")
        bottom.semilogy(s[m], gap[m], "v", color="C3", label="after M-step: KL > 0")
        bottom.semilogy(s[e], gap[e], "o", color="C2", label="after E-step: KL = 0")
        bottom.set_xlabel("iteration (E-step at t, M-step at t + ½)")
        bottom.set_ylabel("KL gap  log p(x) − F  per datum")
        bottom.legend(loc="center right")
    fig.tight_layout()
    return fig
