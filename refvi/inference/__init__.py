"""Amortized inference: a linear Gaussian encoder, ELBO gradient estimators, the
linear VAE, variational EM and the aggregated posterior."""

__all__ = ["aggregate", "encoder", "estimators", "vae", "variational_em"]
