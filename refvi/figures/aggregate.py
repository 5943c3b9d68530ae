"""The aggregated posterior q(z) = int q(z|x) p(x) dx of a linear VAE with a
2-D latent, against the prior (refvi.inference.aggregate).

The model: z ~ N(0, I_2), x | z ~ N(W z + mu, diag(psi)) in d = 4, and the
data follow the model's own marginal p(x) = N(mu, C). Three encoders:
the exact posterior (its aggregate is the prior), a restricted one (the
exact posterior's mean map with the diagonal of its covariance: mean-field),
whose aggregate differs from the prior, and the collapsed encoder
q(z|x) = p(z), which ignores x and still aggregates to the prior exactly.
"""

from typing import NamedTuple

import numpy as np

from refvi.figures._plot import new_figure
from refvi.inference import aggregate
from refvi.inference.encoder import LinearEncoder, exact_posterior_encoder
from refvi.models import linear_gaussian as lg

__all__ = ["Aggregate", "data", "draw", "encoders"]


class Aggregate(NamedTuple):
    """One encoder's aggregate N(mean, cov) and ELBO surgery's terms."""

    name: str
    mean: np.ndarray  # (2,)
    cov: np.ndarray  # (2, 2)
    kl_aggregate: float  # KL(q(z) || p(z))
    mutual_info: float  # I_q(x; z)


def _model():
    rng = np.random.default_rng(8)
    # nearly parallel columns: a strongly correlated posterior
    W = rng.standard_normal((4, 1)) @ np.array([[1.0, 0.9]])
    W = W + 0.15 * rng.standard_normal((4, 2))
    return lg.LinearGaussian(W, rng.standard_normal(4), rng.uniform(0.5, 1.0, 4))


def encoders(model):
    """{name: LinearEncoder} for the three encoders of the figure."""
    exact = exact_posterior_encoder(model)
    S_diag = np.sum(exact.L**2, axis=1)  # diag of S = L L^T
    return {
        "exact posterior": exact,
        "mean-field (diagonal S)": LinearEncoder(
            exact.A, exact.c, log_std=0.5 * np.log(S_diag)
        ),
        "collapsed: q(z|x) = p(z)": LinearEncoder(
            np.zeros((2, model.d)), np.zeros(2), log_std=np.zeros(2)
        ),
    }


def data():
    """Each encoder's aggregate over p(x) = N(mu, C), the model's marginal."""
    model = _model()
    out = []
    for name, encoder in encoders(model).items():
        q = aggregate.aggregate_gaussian(encoder, model.mu, model.cov)
        surgery = aggregate.surgery_gaussian(encoder, model.mu, model.cov)
        out.append(
            Aggregate(
                name,
                np.array(q.mean),
                np.array(q.cov),
                float(surgery.kl_aggregate),
                float(surgery.mutual_info),
            )
        )
    return out


def _ellipse(mean, cov, radius):
    """Points of the contour (z - mean)^T cov^{-1} (z - mean) = radius^2."""
    angle = np.linspace(0.0, 2 * np.pi, 200)
    circle = np.stack([np.cos(angle), np.sin(angle)], axis=1) * radius
    return mean + circle @ np.linalg.cholesky(cov).T


def draw(aggregates):
    fig, axes = new_figure(1, len(aggregates), size=(4.2 * len(aggregates), 4.4))
    for ax, agg in zip(np.atleast_1d(axes), aggregates, strict=True):
        for r in (1, 2, 3):  # the prior drawn last, dotted on top
            q = _ellipse(agg.mean, agg.cov, r)
            prior = _ellipse(np.zeros(2), np.eye(2), r)
            first = r == 1
            ax.plot(
                *q.T, "-", color="C0", lw=2, label="aggregate q(z)" if first else None
            )
            ax.plot(
                *prior.T, ":", color="k", lw=1.2, label="prior p(z)" if first else None
            )
        ax.set_aspect("equal")
        ax.set_xlim(-3.6, 3.6)
        ax.set_ylim(-3.6, 3.6)
        ax.set_xlabel("z₁")
        ax.set_title(
            f"{agg.name}\nKL(q(z) ‖ p(z)) = {agg.kl_aggregate:.3g},"
            f"  I(x; z) = {agg.mutual_info:.3g}",
            fontsize=9,
        )
    np.atleast_1d(axes)[0].set_ylabel("z₂")
    np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("aggregated posterior over the model's p(x): contours at 1, 2, 3 s.d.")
    fig.tight_layout()
    return fig
