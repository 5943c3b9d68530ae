"""Straightforward NumPy implementations a user might write, each with an
optional planted bug, for the tests of refvi.crosscheck's comparison."""

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

LOG_2PI = np.log(2 * np.pi)


def gaussian_kl(mean_q, scale_tril_q, mean_p, scale_tril_p, bug=None):
    """KL(q || p) of batched full normals by the dense formula, and d/dmean_q.

    bug: "no_trace" drops tr(Sigma_p^{-1} Sigma_q); "reversed" computes
    KL(p || q); "transposed" forms Sigma_p as L_p^T L_p in the gradient.
    """
    if bug == "reversed":
        mean_q, scale_tril_q, mean_p, scale_tril_p = (
            mean_p,
            scale_tril_p,
            mean_q,
            scale_tril_q,
        )
    Sq = scale_tril_q @ np.swapaxes(scale_tril_q, -1, -2)
    Sp = scale_tril_p @ np.swapaxes(scale_tril_p, -1, -2)
    d = mean_q.shape[-1]
    delta = mean_q - mean_p
    Sp_inv_delta = np.linalg.solve(Sp, delta[..., None])[..., 0]
    trace = np.trace(np.linalg.solve(Sp, Sq), axis1=-2, axis2=-1)
    if bug == "no_trace":
        trace = 0.0
    value = 0.5 * (
        trace
        + np.sum(delta * Sp_inv_delta, -1)
        - d
        + np.linalg.slogdet(Sp)[1]
        - np.linalg.slogdet(Sq)[1]
    )
    if bug == "transposed":
        Sp_wrong = np.swapaxes(scale_tril_p, -1, -2) @ scale_tril_p
        Sp_inv_delta = np.linalg.solve(Sp_wrong, delta[..., None])[..., 0]
    return {"value": value, "grad_mean_q": Sp_inv_delta}


def linear_gaussian_elbo(W, mu, psi, x, m_q, L_q, bug=None):
    """ELBO_i = E_q[log p(x_i | z)] + E_q[log p(z)] + H[q_i], dense.

    bug: "no_entropy" drops H[q_i].
    """
    d, k = W.shape
    Sq = L_q @ L_q.T
    r = x - mu - m_q @ W.T
    quad = np.sum(r**2 / psi, axis=1) + np.trace(W.T @ (W / psi[:, None]) @ Sq)
    ell = -0.5 * (d * LOG_2PI + np.sum(np.log(psi)) + quad)
    prior = -0.5 * (k * LOG_2PI + np.sum(m_q**2, axis=1) + np.trace(Sq))
    H = 0.5 * k * (1 + LOG_2PI) + np.sum(np.log(np.diag(L_q)))
    if bug == "no_entropy":
        H = 0.0
    return {"value": ell + prior + H}


def mixture_em_step_full(logits, means, L, x, covariance_type, reg_covar, bug=None):
    """One EM step of a full-covariance mixture.

    bug: "no_reg_covar" leaves reg_covar off the covariances.
    """
    assert covariance_type == "full"
    log_w = logits - logsumexp(logits)
    lj = np.stack(
        [
            log_w[k] + multivariate_normal(means[k], L[k] @ L[k].T).logpdf(x)
            for k in range(len(log_w))
        ],
        axis=1,
    )
    r = np.exp(lj - logsumexp(lj, axis=1, keepdims=True))
    Nk = r.sum(axis=0)
    new_means = (r.T @ x) / Nk[:, None]
    cov = []
    for k in range(len(Nk)):
        e = x - new_means[k]
        C = (r[:, k, None] * e).T @ e / Nk[k]
        if bug != "no_reg_covar":
            C = C + reg_covar * np.eye(x.shape[1])
        cov.append(C)
    return {
        "responsibilities": r,
        "weights": Nk / x.shape[0],
        "means": new_means,
        "covariances": np.stack(cov),
    }


def gaussian_log_prob(mean, scale_tril, x, bug=None):
    """log N(x_i; mean, L L^T) by whitening the residual x_i - mean.

    bug: "whiten_first" whitens x and mean separately and subtracts after,
    which loses eps |mean| / sigma when the data sit far from the origin.
    """
    from scipy.linalg import solve_triangular

    d = mean.shape[0]
    if bug == "whiten_first":
        u = (
            solve_triangular(scale_tril, x.T, lower=True)
            - solve_triangular(scale_tril, mean, lower=True)[:, None]
        )
    else:
        u = solve_triangular(scale_tril, (x - mean).T, lower=True)
    logdet = 2 * np.sum(np.log(np.diag(scale_tril)))
    return {"value": -0.5 * (d * LOG_2PI + logdet + np.sum(u**2, axis=0))}


def vae_sgvb_draw(A, c, log_std, W, mu, psi, x, eps, bias=1.0):
    """One draw of the reparameterized (SGVB-B) ELBO estimate of the linear VAE
    and its gradient: z_i = A x_i + c + exp(log_std) eps_i (eps (n, k)),
    ELBO_i ~ log p(x_i | z_i) - KL(q_i || N(0, I)); gradients of the sum over i.

    bias: a planted multiplicative bias of every output (1.0: none).
    """
    s = np.exp(log_std)
    m = x @ A.T + c
    z = m + s * eps
    r = x - z @ W.T - mu
    rp = r / psi
    log_lik = -0.5 * np.sum(LOG_2PI + np.log(psi) + r * rp, axis=1)
    kl = 0.5 * np.sum(m**2 + s**2 - 1.0 - 2.0 * log_std, axis=1)
    g_z = rp @ W  # d log p(x_i | z_i) / d z_i
    n = x.shape[0]
    grads = {
        "grad_A": (g_z - m).T @ x,
        "grad_c": np.sum(g_z - m, axis=0),
        "grad_log_std": np.sum(g_z * s * eps, axis=0) - n * (s**2 - 1.0),
        "grad_W": rp.T @ z,
        "grad_mu": np.sum(rp, axis=0),
        "grad_psi": 0.5 * np.sum(rp**2 - 1.0 / psi, axis=0),
    }
    out = {"value": log_lik - kl, **grads}
    return {k: bias * v for k, v in out.items()}
