"""Latent-variable models with closed-form posteriors."""
