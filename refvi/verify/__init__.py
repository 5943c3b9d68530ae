"""Numerical verification toolkit: quadrature, gradient checks, Monte Carlo.

Depends on numpy and scipy only, so it can check everything built above it.
"""

__all__ = ["gradcheck", "montecarlo", "quadrature"]
