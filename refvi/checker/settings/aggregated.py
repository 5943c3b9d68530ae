"""The ``aggregated`` setting: the aggregated posterior, integrals over x."""

import numpy as np

from refvi import gaussian
from refvi.checker.measured import Measured, current_target
from refvi.checker.namespace import (
    Instance,
)
from refvi.checker.settings._common import (
    CLOSED,
    _random_L,
)
from refvi.gaussian import _log_prob_whitened, _logdet_chol, _whiten
from refvi.inference import aggregate
from refvi.inference.encoder import LinearEncoder, exact_posterior_encoder
from refvi.models import linear_gaussian as lg
from refvi.verify.quadrature import expect_gaussian_refined


def _conditional_log_density(z, means, L):
    """log N(z_j; means_i, L L^T) for points z (m, k) and means (N, k) -> (N, m)."""
    N, k = means.shape
    diff = (z[None, :, :] - means[:, None, :]).reshape(-1, k)
    u = _whiten(diff, np.zeros(k), L)
    return _log_prob_whitened(u, _logdet_chol(L)).reshape(N, z.shape[0])


#: Gauss–Hermite orders per coordinate tried by ``E_data``, ``E_data2``,
#: ``E_model``: the first whose error estimate is below the refinement target
#: decides; the last is the budget (450 x 450 nodes: seed 92, with a posterior
#: variance of 0.05, needs it to show an error below 1e-10).
ORDERS_X = (40, 60, 90, 135, 200, 300, 450)


def _expectation_over_x(mean, L):
    """E_{x ~ N(mean, L L^T)} f(x) by Gauss–Hermite, the order raised until
    the error estimate is below the refinement target (a tenth of the line's
    tolerance, ``measured.current_target``) or the budget ``ORDERS_X`` is
    spent (``quadrature.expect_gaussian_refined``); a ``Measured`` value and
    error, the error infinite where the budget was spent first (as
    ``namespace.GaussianRule.measure``)."""

    def expect(f):
        target = current_target()
        result = expect_gaussian_refined(f, mean, L, rtol=target, orders=ORDERS_X)
        met = result.error <= target * np.maximum(1.0, np.abs(result.value))
        return Measured(result.value, np.where(met, result.error, np.inf))

    return expect


def aggregated_setting(seed):
    """Linear-Gaussian model (k = 1, d = 2), a linear Gaussian encoder, Gaussian data.

    Model z ~ N(0, 1), x | z ~ N(W z + mu, diag(psi)), marginal p_theta(x) =
    N(mu, C); posterior p(z|x) = N(M (x - mu), S). Encoder q(z|x) =
    N(A x + b, sigma_q^2). Data p_data = N(m_data, C_data), not p_theta.
    ``p_data2`` = N(m_data2, C_data2) differs from p_theta only along a
    direction v with M v = 0.

    Functions of test points z (m, 1) and points x (N, d), returning (N, m):
    ``log_enc``, ``log_post``, the counterexample encoders ``log_enc_prior``
    (q(z|x) = p(z)) and ``log_enc_flip`` (q(z|x) = N(-M (x - mu), S));
    of z: ``log_prior``; of x (N,): ``log_pdata``, ``log_pdata2``,
    ``log_pmodel``, ``kl_enc`` (KL(q(z|x) || p(z|x)),
    ``linear_gaussian.kl_to_posterior``). Expectations over x by Gauss–Hermite
    rules refined under their error estimate (``Measured`` values):
    ``E_data``, ``E_data2``, ``E_model``. Closed forms, from
    ``refvi.inference.aggregate``:
    ``log_q_agg`` (int q(z|x) p_data(x) dx), ``log_p_agg``
    (int p(z|x) p_data(x) dx), ``kl_agg`` (KL of the encoder's aggregate over
    p_theta to p(z)). Parameters ``W, mu, psi, C, M, S, A, b, sigma_q,
    m_data, C_data, m_data2, C_data2``; points ``z`` (7, 1), ``x_test`` (3, d).
    """
    d, k = 2, 1
    rng = np.random.default_rng(seed)
    model = lg.LinearGaussian(
        rng.normal(size=(d, k)), rng.normal(size=d), rng.uniform(0.3, 1.5, size=d)
    )
    C = model.cov
    post0 = lg.posterior(model, model.mu + np.eye(d))
    M, S, L_S = post0.m.T, post0.S, post0.L_S  # posterior mean M (x - mu)
    A = rng.normal(scale=0.5, size=(k, d))
    b = rng.normal(scale=0.5, size=k)
    sigma_q = rng.uniform(0.4, 1.0)
    L_enc = np.array([[sigma_q]])
    m_data = model.mu + rng.normal(size=d)
    L_data = _random_L(rng, d, 1.2)
    C_data = L_data @ L_data.T
    v = np.array([-M[0, 1], M[0, 0]]) / np.linalg.norm(M)  # M v = 0
    m_data2 = model.mu + 1.0 * v
    C_data2 = C + 0.8 * np.outer(v, v)

    def log_enc(z, x):
        return _conditional_log_density(z, x @ A.T + b, L_enc)

    def log_post(z, x):
        return _conditional_log_density(z, lg.posterior(model, x).m, L_S)

    def log_enc_flip(z, x):
        return _conditional_log_density(z, -lg.posterior(model, x).m, L_S)

    def log_enc_prior(z, x):
        return np.broadcast_to(lg.log_prior(model, z), (x.shape[0], z.shape[0]))

    def gauss(mean, Sigma):
        return gaussian.Gaussian(mean, scale_tril=np.linalg.cholesky(Sigma))

    # the aggregated posteriors and their KL from the library (inference.aggregate)
    encoder = LinearEncoder(A, b, L=L_enc)
    q_agg = aggregate.aggregate_gaussian(encoder, m_data, C_data)
    p_agg = aggregate.aggregate_gaussian(exact_posterior_encoder(model), m_data, C_data)
    kl_agg = aggregate.surgery_gaussian(encoder, model.mu, C).kl_aggregate
    names = {
        "z": np.linspace(-2.5, 2.5, 7)[:, None],
        "x_test": m_data + rng.normal(size=(3, d)) @ L_data.T,
        "log_enc": log_enc,
        "log_post": log_post,
        "log_enc_prior": log_enc_prior,
        "log_enc_flip": log_enc_flip,
        "log_prior": lambda z: lg.log_prior(model, z),
        "log_pdata": lambda x: gaussian.log_prob(gauss(m_data, C_data), x),
        "log_pdata2": lambda x: gaussian.log_prob(gauss(m_data2, C_data2), x),
        "log_pmodel": lambda x: lg.log_marginal(model, x),
        "kl_enc": lambda x: lg.kl_to_posterior(
            model, x, x @ A.T + b, np.broadcast_to(L_enc, (x.shape[0], k, k))
        ),
        "E_data": _expectation_over_x(m_data, L_data),
        "E_data2": _expectation_over_x(m_data2, np.linalg.cholesky(C_data2)),
        "E_model": _expectation_over_x(model.mu, np.linalg.cholesky(C)),
        "log_q_agg": lambda z: gaussian.log_prob(q_agg, z),
        "log_p_agg": lambda z: gaussian.log_prob(p_agg, z),
        "kl_agg": np.array([kl_agg]),
    }
    names.update(
        W=model.W,
        mu=model.mu,
        psi=model.psi,
        C=C,
        M=M,
        S=S,
        A=A,
        b=b,
        sigma_q=sigma_q,
        m_data=m_data,
        C_data=C_data,
        m_data2=m_data2,
        C_data2=C_data2,
    )
    closed = {
        "log_q_agg": r"q_\{?\\phi\}?\(z\)",
        "log_p_agg": r"\\int",
        "kl_agg": CLOSED["kl"],
    }
    return Instance("aggregated", seed, "none", names, closed)
