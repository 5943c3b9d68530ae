"""The aggregated posterior q(z) = int q(z | x) p_data(x) dx and ELBO surgery.

For a linear encoder q(z | x) = N(A x + c, Sigma_q) (``encoder.LinearEncoder``
without a data-dependent log-std):

- Gaussian data p_data = N(m, C): q(z) = N(A m + c, A C A^T + Sigma_q), a
  Gaussian, and everything below is in closed form;
- an empirical data set x_1..x_n: q(z) = (1/n) sum_i N(z; A x_i + c, Sigma_q),
  a mixture of n Gaussians; KL(q(z) || p(z)) by Monte Carlo with a standard
  error or by Gauss-Hermite quadrature with an error estimate.

ELBO surgery (Hoffman & Johnson 2016, "ELBO surgery: yet another way to carve
up the variational evidence lower bound"): with q(x, z) = p_data(x) q(z | x),

    E_x KL(q(z | x) || p(z)) = I_q(x; z) + KL(q(z) || p(z)),

I_q(x; z) = E_x KL(q(z | x) || q(z)) = H[q(z)] - E_x H[q(z | x)] the mutual
information. Here p(z) = N(0, I_k).
"""

from typing import NamedTuple

import numpy as np
from scipy.special import logsumexp

from refvi import gaussian
from refvi._validate import as_data, as_float_array, cholesky_of_spd
from refvi.inference.encoder import check_encoder
from refvi.verify.montecarlo import mc_mean
from refvi.verify.quadrature import QuadResult, expect_gaussian

__all__ = [
    "aggregate_gaussian",
    "Surgery",
    "surgery_gaussian",
    "log_aggregate_empirical",
    "surgery_empirical_mc",
    "kl_aggregate_empirical_quad",
]


def _check_linear(encoder):
    check_encoder(encoder)
    if encoder.B is not None:
        raise ValueError(
            "encoder must have a data-independent covariance (B is None) for the "
            "aggregated posterior"
        )
    return encoder


def _conditional(encoder, mean):
    """N(mean, Sigma_q) with the encoder's covariance, a (batch of) ``Gaussian``."""
    if encoder.L is not None:
        return gaussian.Gaussian(mean, scale_tril=encoder.L)
    return gaussian.Gaussian(mean, log_std=encoder.log_std)


def _noise(encoder):
    """N(0, Sigma_q), the encoder's noise."""
    return _conditional(encoder, np.zeros(encoder.k))


def _prior(k):
    return gaussian.standard_normal(k)


def _check_data_gaussian(encoder, mean_data, cov_data):
    _check_linear(encoder)
    mean_data = as_float_array(mean_data, "mean_data", shape=(encoder.d,))
    cholesky_of_spd(cov_data, "cov_data", d=encoder.d)
    return mean_data, as_float_array(cov_data, "cov_data", shape=(encoder.d,) * 2)


# ---------------------------------------------------------------------------
# Gaussian data: closed forms.


def aggregate_gaussian(encoder, mean_data, cov_data):
    """q(z) = N(A m + c, A C A^T + Sigma_q) for p_data = N(m, C), a ``Gaussian``.

    Implements derivations/aggregated_posterior.md (AP.1) in closed form.
    """
    m, C = _check_data_gaussian(encoder, mean_data, cov_data)
    A = encoder.A
    cov = A @ C @ A.T + _noise(encoder).cov
    return gaussian.Gaussian(A @ m + encoder.c, cov=0.5 * (cov + cov.T))


class Surgery(NamedTuple):
    """The three terms of ELBO surgery (Hoffman & Johnson 2016).

    ``expected_kl`` = E_x KL(q(z|x) || p(z)), ``mutual_info`` = I_q(x; z),
    ``kl_aggregate`` = KL(q(z) || p(z)); the identity is
    expected_kl = mutual_info + kl_aggregate.
    """

    expected_kl: object
    mutual_info: object
    kl_aggregate: object


def surgery_gaussian(encoder, mean_data, cov_data):
    """ELBO surgery's three terms in closed form for p_data = N(m, C).

    Implements derivations/elbo_surgery.md (ES.7); its ``kl_aggregate`` is
    the left side of derivations/aggregated_posterior.md (AP.2).

    - E_x KL(q(z|x) || p(z)) = KL(N(A m + c, Sigma_q) || p(z)) + 1/2 tr(A C A^T)
      (G.9 is quadratic in the mean; its expectation over x adds the trace);
    - I_q(x; z) = H[q(z)] - H[q(z|x)] (G.7);
    - KL(q(z) || p(z)) (G.9) of the aggregate.
    Each is computed by its own route, so the identity is a check.
    """
    q_agg = aggregate_gaussian(encoder, mean_data, cov_data)
    m, C = _check_data_gaussian(encoder, mean_data, cov_data)
    A, k = encoder.A, encoder.k
    at_mean = _conditional(encoder, A @ m + encoder.c)
    expected_kl = float(gaussian.kl(at_mean, _prior(k))) + 0.5 * np.sum(A * (A @ C))
    mutual_info = float(gaussian.entropy(q_agg) - gaussian.entropy(_noise(encoder)))
    return Surgery(expected_kl, mutual_info, float(gaussian.kl(q_agg, _prior(k))))


# ---------------------------------------------------------------------------
# Empirical data: a mixture of n Gaussians.


def log_aggregate_empirical(encoder, x, z):
    """log q(z_j) = logsumexp_i log N(z_j; A x_i + c, Sigma_q) - log n, shape (m,).

    The aggregate of derivations/aggregated_posterior.md (AP.1) for an
    empirical data set, the q(z) of derivations/elbo_surgery.md (ES.2)-(ES.3).
    """
    _check_linear(encoder)
    x = as_data(x, encoder.d)
    z = as_float_array(z, "z", ndim=2, shape=(None, encoder.k))
    return _log_aggregate(encoder, x @ encoder.A.T + encoder.c, z)


def _log_aggregate(encoder, means, z):
    """log q(z_j) for the mixture with component means (n, k); z (m, k). No checks."""
    log_comp = gaussian.log_prob(_conditional(encoder, means), z[:, None, :])  # (m, n)
    return logsumexp(log_comp, axis=1) - np.log(means.shape[0])


def _check_eps(eps, n, k):
    return as_float_array(eps, "eps", ndim=3, shape=(None, n, k))


def _draws(encoder, x, eps):
    """z_si = A x_i + c + L eps_si: one draw per data point per replicate s."""
    _check_linear(encoder)
    x = as_data(x, encoder.d)
    eps = _check_eps(eps, x.shape[0], encoder.k)
    means = x @ encoder.A.T + encoder.c
    return means, gaussian.reparameterize(_conditional(encoder, means), eps)


def surgery_empirical_mc(encoder, x, eps):
    """ELBO surgery on an empirical data set, the two integrals by Monte Carlo.

    Implements derivations/elbo_surgery.md (ES.3)-(ES.5); the mutual
    information lies in [0, log n] (ES.6).

    Each replicate s draws one z_si ~ q(z | x_i) for every i, which is a
    stratified draw from q(x, z) = (1/n) sum_i delta(x - x_i) q(z | x):

        I_s  = (1/n) sum_i [log q(z_si | x_i) - log q(z_si)],
        KL_s = (1/n) sum_i [log q(z_si) - log p(z_si)],

    averaged over the S replicates with standard errors (``MCEstimate``).
    ``expected_kl`` is exact, the mean of the closed-form KL(q(z|x_i) || p(z)).

    Parameters
    ----------
    encoder : LinearEncoder
    x : array_like, shape (n, d)
    eps : array_like, shape (S, n, k), S >= 2

    Returns
    -------
    Surgery
        ``expected_kl`` float, ``mutual_info`` and ``kl_aggregate`` MCEstimates.
    """
    means, z = _draws(encoder, x, eps)
    S, n, k = z.shape
    conditional = _conditional(encoder, means)
    log_q_agg = _log_aggregate(encoder, means, z.reshape(-1, k)).reshape(S, n)
    log_q_cond = gaussian.log_prob(conditional, z)
    log_p = gaussian.log_prob(_prior(k), z)
    kl_i = gaussian.kl(conditional, _prior(k))
    return Surgery(
        float(np.mean(kl_i)),
        mc_mean(np.mean(log_q_cond - log_q_agg, axis=1)),
        mc_mean(np.mean(log_q_agg - log_p, axis=1)),
    )


def kl_aggregate_empirical_quad(encoder, x, *, order=None):
    """KL(q(z) || p(z)) for an empirical data set by Gauss-Hermite quadrature.

    Implements derivations/elbo_surgery.md (ES.3).

    KL = (1/n) sum_i E_{u ~ N(0, I)}[log q(z_i(u)) - log p(z_i(u))] with
    z_i(u) = A x_i + c + L u: one ``verify.quadrature.expect_gaussian`` over u
    (k <= 4) whose integrand is the vector over the n components. Its error
    estimate (two orders compared) is averaged likewise. The cost is
    n^2 order^k evaluations of a Gaussian density.
    """
    _check_linear(encoder)
    x = as_data(x, encoder.d)
    k = encoder.k
    means = x @ encoder.A.T + encoder.c
    conditional = _conditional(encoder, means)

    def f(u):  # (m, k) nodes -> (m, n)
        z = gaussian.reparameterize(conditional, u[:, None, :]).reshape(-1, k)
        values = _log_aggregate(encoder, means, z) - gaussian.log_prob(_prior(k), z)
        return values.reshape(u.shape[0], -1)

    res = expect_gaussian(f, np.zeros(k), np.eye(k), order=order)
    return QuadResult(float(np.mean(res.value)), float(np.mean(res.error)))
