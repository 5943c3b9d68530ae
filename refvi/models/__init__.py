"""Latent-variable models with closed-form posteriors."""

__all__ = [
    "em",
    "linear_gaussian",
    "linear_gaussian_em",
    "mixture",
    "mixture_em",
    "mixture_prior",
]
