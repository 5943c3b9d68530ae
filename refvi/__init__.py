"""refvi: variational inference by closed form, confirmed by another route.

Every quantity refvi computes (a log-likelihood, an ELBO, a KL divergence, a
gradient, an EM update) has a closed form with a handwritten gradient, and a
test that computes the same number by an independent route (quadrature,
finite differences, Monte Carlo with standard errors, or another library).
"""

__version__ = "0.1.0"
