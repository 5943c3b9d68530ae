"""The settings a derivation can be claimed for, each a random instance per seed.

``SETTINGS[name](seed, **options)`` returns an ``Instance``
(``refvi.checker.namespace``) built from ``numpy.random.default_rng(seed)``:
the same seed gives the same instance. Every per-datum setting holds ``n = 2``
data points; values that depend on the datum have shape (n,) and functions of
z return (n, m) (see ``namespace.Fn``).

Names every latent-variable setting provides (``derivations/README.md``):

- ``x`` (n, d); densities as functions of z: ``log_prior``, ``log_lik``,
  ``log_joint``, ``log_post`` (the exact posterior p(z|x)), ``log_q``;
- ``log_px`` (n,): log p(x) from the model's marginal;
- ``E_q(f)``, ``E_post(f)``, ``E_prior(f)``: expectations by Gauss–Hermite
  quadrature refined under its error estimate (``Measured`` values; exact
  sums for a discrete z);
- ``MC_q(f, n=4000)``: a Monte Carlo estimate of E_q f with its standard
  error, compared with ``~``;
- ``integral(f)``: the integral of f over z (a refined Gauss–Hermite rule
  divided by its weight, a ``Measured`` value; the sum over the K values of
  a discrete z);
- closed forms ``kl`` = KL(q || p(z|x)) and ``elbo`` = F(q), each usable
  only in a side of a line whose LaTeX names it;
- the parameters (``W``, ``mu``, ``psi``, ...).
"""

import numpy as np

from refvi.checker.namespace import (
    Fn,
    GaussianRule,
    monte_carlo,
)
from refvi.verify.gradcheck import numerical_gradient

N_DATA = 2

#: integral() over a continuous z uses the reference N(m_q, REF_SCALE^2 Sigma_q).
REF_SCALE = np.sqrt(1.5)

#: Gauss–Hermite order (k = 1) for the mixture-prior setting: log p(z|x) is
#: the log of a Gaussian mixture, whose switch between components needs far
#: more nodes than a polynomial (order 60 leaves errors near 1e-6 there).
ORDER_MIXTURE_PRIOR = 200

#: LaTeX that names each closed form (searched in the side a check computes).
CLOSED = {
    "kl": r"KL",
    "elbo": r"(?<![\\a-zA-Z])F(?![a-zA-Z])|\\mathcal\{L\}|ELBO",
    "kl_std": r"KL",
    "entropy_p": r"H\[",
    "F_new": r"(?<![\\a-zA-Z])F(?![a-zA-Z])",
    "kl_fn": r"KL",
    "kl_of": r"KL",
    "elbo_of": r"ELBO",
    "kl_diag_fn": r"KL",
    "kl_std_fn": r"KL",
    "kl_std_diag_fn": r"KL",
}


def _random_L(rng, k, scale=1.0):
    """A random lower Cholesky factor with diagonal in [0.5, 1.5] * scale."""
    L = np.tril(rng.normal(scale=0.4, size=(k, k)), -1)
    return scale * (L + np.diag(rng.uniform(0.5, 1.5, size=k)))


def _per_datum(density, x, name):
    """Fn from ``density(x_i, z_i)`` (one datum, points (m, k)) for each datum."""

    def f(z):
        return np.stack([density(x[i], z[i]) for i in range(x.shape[0])])

    return Fn(f, name)


def _integral_continuous(center, L_ref, order):
    """integral(f) = int f(z) dz for each datum, a ``Measured`` of shape (n,).

    The Gauss–Hermite rule of the reference N(center_i, L_ref_i L_ref_i^T)
    applied to f / N: sum_j w_j f(z_j) / N(z_j), refined under its error
    estimate (``GaussianRule.measure``). With the reference N(m_q, 1.5 Sigma_q)
    it reaches about 1e-13 on integrands q(z) g(z) with g smooth.
    """
    rule = GaussianRule(center, L_ref, order)

    def integral(f):
        return rule.measure(f, "integral", integral=True)

    return integral


def _latent_names(seed, x, densities, log_px, q_rule, post_rule, prior_rule, integral):
    """The names shared by every latent-variable setting."""
    names = {"x": x, "n": x.shape[0], "d": x.shape[1], "log_px": log_px}
    names.update(densities)
    names.update(
        MC_q=monte_carlo(q_rule, seed),
        E_q=q_rule.measure,
        E_post=post_rule.measure,
        E_prior=prior_rule.measure,
        integral=integral,
    )
    return names


# ---------------------------------------------------------------------------
# Settings.


def _numerical_grad(f, **params):
    """d f / d param by Richardson central differences (``gradcheck``).

    ``grad(lambda mu: ..., mu=mu_p)`` returns an array of the parameter's
    shape; a parameter named ``L``, ``L_*`` is perturbed in its lower
    triangle only (its gradient is zero above the diagonal). With several
    keyword parameters, returns the gradients concatenated in order, flattened.
    """
    grads = numerical_gradient(lambda P: float(np.sum(f(**P))), params)
    if len(params) == 1:
        return next(iter(grads.values()))
    return np.concatenate([np.ravel(grads[name]) for name in params])
