"""The linear VAE (refvi.inference.vae): the ELBO gap closing while it trains,
and posterior collapse as the noise variance crosses the data's eigenvalues.

Data: n = 600 points in d = 5 from a pPCA model with k = 2 latent
directions; the VAE has the same k, a diagonal encoder and isotropic noise.
Its global optimum is the pPCA maximum-likelihood solution with the exact
posterior as encoder (``vae.optimum``), where the ELBO equals log p(x).
"""

from typing import NamedTuple

import numpy as np

from refvi.figures._plot import new_figure
from refvi.inference import vae
from refvi.inference.encoder import LinearEncoder
from refvi.models import linear_gaussian as lg
from refvi.models.linear_gaussian_em import log_marginal_total, sufficient_stats

__all__ = [
    "CollapseCurves",
    "TrainingCurves",
    "collapse_data",
    "data_set",
    "draw_collapse",
    "draw_training",
    "training_data",
]

K = 2


def data_set():
    """x (600, 5) from pPCA with loadings of scale 2 and 1.2, noise 0.3."""
    rng = np.random.default_rng(3)
    d, n = 5, 600
    W = np.linalg.qr(rng.standard_normal((d, K)))[0] * np.array([2.0, 1.2])
    z = rng.standard_normal((n, K))
    return z @ W.T + 0.5 + np.sqrt(0.3) * rng.standard_normal((n, d))


class TrainingCurves(NamedTuple):
    """Per epoch (0 = the start): ELBO and log p(x) per datum, and the pPCA
    maximum of log p(x) per datum."""

    epoch: np.ndarray
    elbo: np.ndarray
    log_lik: np.ndarray
    ppca_max: float


def training_data(n_epochs=200):
    """Full-batch Adam on the closed-form ELBO gradient from a small random
    start."""
    x = data_set()
    rng = np.random.default_rng(4)
    d = x.shape[1]
    encoder = LinearEncoder(
        0.1 * rng.standard_normal((K, d)), np.zeros(K), log_std=np.zeros(K)
    )
    model = lg.LinearGaussian.ppca(0.1 * rng.standard_normal((d, K)), np.zeros(d), 1.0)
    _, _, trace = vae.train(
        encoder,
        model,
        x,
        rng,
        n_epochs=n_epochs,
        lr=0.05,
        lr_decay=0.99,
        estimator="analytic",
    )
    best = vae.optimum(x, K).model
    stats = sufficient_stats(x)
    ppca_max = log_marginal_total(best, stats) / stats.n
    epoch = np.arange(trace.elbo.shape[0])
    return TrainingCurves(epoch, trace.elbo, trace.log_lik, float(ppca_max))


def draw_training(curves):
    fig, (top, bottom) = new_figure(2, 1, size=(6.4, 6.0), sharex=True)
    top.plot(curves.epoch, curves.log_lik, "-", color="C0", label="log p(x) / n")
    top.plot(curves.epoch, curves.elbo, "--", color="C1", label="ELBO / n")
    top.axhline(curves.ppca_max, color="k", lw=1, ls=":", label="pPCA maximum")
    top.set_ylabel("per datum")
    top.set_title("linear VAE (d = 5, k = 2), Adam on the closed-form ELBO")
    top.legend(loc="lower right")
    gap = curves.log_lik - curves.elbo
    bottom.semilogy(curves.epoch, np.maximum(gap, 1e-16), "-", color="C3")
    bottom.set_ylabel("gap log p(x) − ELBO = E KL(q ‖ p(z|x))")
    bottom.set_xlabel("epoch")
    fig.tight_layout()
    return fig


class CollapseCurves(NamedTuple):
    """At each fixed noise variance sigma2: the optimum's decoder column norms
    |W_j| and posterior variances S_jj (j = 1..k), and the eigenvalues."""

    sigma2: np.ndarray
    column_norm: np.ndarray  # (m, k)
    posterior_var: np.ndarray  # (m, k)
    collapsed: np.ndarray  # (m, k) bool
    eigenvalues: np.ndarray  # (d,)


def collapse_data(n_points=121):
    """The closed-form optimum for sigma2 on a log grid across the top two
    eigenvalues of the sample covariance."""
    x = data_set()
    lam = vae.optimum(x, K).eigenvalues
    sigma2 = np.geomspace(lam[-1] / 2, 2 * lam[0], n_points)
    norms, variances, collapsed = [], [], []
    for s2 in sigma2:
        best = vae.optimum(x, K, sigma2=s2)
        norms.append(np.linalg.norm(best.model.W, axis=0))
        variances.append(np.exp(2 * best.encoder.log_std))
        collapsed.append(best.collapsed)
    return CollapseCurves(
        sigma2, np.array(norms), np.array(variances), np.array(collapsed), lam
    )


def draw_collapse(curves):
    fig, (top, bottom) = new_figure(2, 1, size=(6.4, 6.0), sharex=True)
    for j in range(curves.column_norm.shape[1]):
        top.semilogx(
            curves.sigma2, curves.column_norm[:, j], color=f"C{j}", label=f"|W_{j + 1}|"
        )
        bottom.semilogx(
            curves.sigma2,
            curves.posterior_var[:, j],
            color=f"C{j}",
            label=f"S_{j + 1}{j + 1} = Var q(z_{j + 1}|x)",
        )
    for ax in (top, bottom):
        for j, lam in enumerate(curves.eigenvalues[: curves.column_norm.shape[1]]):
            ax.axvline(lam, color=f"C{j}", ls=":", lw=1)
    top.set_ylabel("decoder column norm")
    top.set_title("posterior collapse: direction j collapses once σ² ≥ λ_j (dotted)")
    top.legend()
    bottom.set_ylabel("posterior variance (1 = prior)")
    bottom.set_xlabel("fixed noise variance σ²")
    bottom.legend(loc="lower right")
    fig.tight_layout()
    return fig
