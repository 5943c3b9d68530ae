"""The ``gaussian`` setting: two Gaussians p and q (KLs, entropies, gradients)."""

import numpy as np
from scipy import stats

from refvi import gaussian
from refvi.checker.namespace import (
    CONTINUOUS,
    Fn,
    GaussianRule,
    Instance,
    monte_carlo,
)
from refvi.checker.settings._common import (
    CLOSED,
    REF_SCALE,
    _integral_continuous,
    _numerical_grad,
    _random_L,
)


def gaussian_setting(seed, d="2"):
    """Two Gaussians p = N(mu_p, L_p L_p^T), q = N(mu_q, L_q L_q^T) in d dims,
    their diagonal versions, points and upstream gradients.

    Functions of z (shape (1, m, d)): ``log_p``, ``log_q``, ``log_std`` (N(0, I)),
    ``log_p_diag``, ``log_q_diag``; expectations ``E_p``, ``E_p_diag`` (Gauss–
    Hermite), ``MC_p`` (Monte Carlo under p); ``integral``. Independent
    densities: ``logpdf(x, mean, Sigma)`` (``scipy.stats``); the library's
    closed forms ``kl`` = KL(p || q) (``gaussian.kl``), ``kl_std`` =
    KL(p || N(0, I)), ``entropy_p``, and as functions of the parameters
    ``kl_fn(mu_p, L_p, mu_q, L_q)``, ``kl_diag_fn(mu_p, s_p, mu_q, s_q)``,
    ``kl_std_fn(mu, L)``, ``kl_std_diag_fn(mu, s)``; ``entropy(mean, Sigma)``
    (``scipy.stats``). ``grad(f, **params)``: numerical gradient.
    Parameters ``d``, ``mu_p, L_p, Sigma_p, mu_q, L_q, Sigma_q``; diagonal
    ``s_p, s_q`` (log standard deviations), ``sigma_p, sigma_q``; a batch
    ``x`` (n, d) with n = 3, upstream gradients ``g`` (n,) and ``G`` (n, d),
    standard normal draws ``eps`` (n, d), a lower-triangular direction ``dL``.
    Values of expectations have shape (1,).
    """
    d = int(d)
    rng = np.random.default_rng(seed)
    p = gaussian.Gaussian(rng.normal(size=d), scale_tril=_random_L(rng, d))
    q = gaussian.Gaussian(rng.normal(size=d), scale_tril=_random_L(rng, d))
    s_p, s_q = rng.normal(scale=0.4, size=(2, d))
    p_diag = gaussian.Gaussian(p.mean, log_std=s_p)
    q_diag = gaussian.Gaussian(q.mean, log_std=s_q)
    n = 3
    order = {1: 40, 2: 24}.get(d, 10)

    def rule(dist):
        return GaussianRule(dist.mean[None], dist.to_full().scale_tril[None], order)

    p_rule, q_rule, pd_rule, qd_rule = (rule(g) for g in (p, q, p_diag, q_diag))
    std = gaussian.standard_normal(d)
    std_rule = rule(std)
    names = {
        "d": d,
        "log_p": Fn(p_rule.log_density, "log_p"),
        "log_q": Fn(q_rule.log_density, "log_q"),
        "log_std": Fn(std_rule.log_density, "log_std"),
        "log_p_diag": Fn(pd_rule.log_density, "log_p_diag"),
        "log_q_diag": Fn(qd_rule.log_density, "log_q_diag"),
        "E_p": p_rule.measure,
        "E_p_diag": pd_rule.measure,
        "MC_p": monte_carlo(p_rule, seed),
        "integral": _integral_continuous(
            p.mean[None], REF_SCALE * p.scale_tril[None], order
        ),
        "logpdf": lambda x, mean, Sigma: stats.multivariate_normal(mean, Sigma).logpdf(
            x
        ),
        "entropy": lambda mean, Sigma: stats.multivariate_normal(mean, Sigma).entropy(),
        "grad": _numerical_grad,
        "kl_fn": lambda mu_p, L_p, mu_q, L_q: gaussian.kl(
            gaussian.Gaussian(mu_p, scale_tril=L_p),
            gaussian.Gaussian(mu_q, scale_tril=L_q),
        ),
        "kl_diag_fn": lambda mu_p, s_p, mu_q, s_q: gaussian.kl(
            gaussian.Gaussian(mu_p, log_std=s_p), gaussian.Gaussian(mu_q, log_std=s_q)
        ),
        "kl_std_fn": lambda mu, L: gaussian.kl(
            gaussian.Gaussian(mu, scale_tril=L), std
        ),
        "kl_std_diag_fn": lambda mu, s: gaussian.kl(
            gaussian.Gaussian(mu, log_std=s), std
        ),
        "kl": np.array([gaussian.kl(p, q)]),
        "kl_std": np.array([gaussian.kl(p, std)]),
        "entropy_p": np.array([gaussian.entropy(p)]),
        "mu_p": p.mean,
        "L_p": p.scale_tril,
        "Sigma_p": p.cov,
        "mu_q": q.mean,
        "L_q": q.scale_tril,
        "Sigma_q": q.cov,
        "s_p": s_p,
        "s_q": s_q,
        "sigma_p": np.exp(s_p),
        "sigma_q": np.exp(s_q),
        "x": p.mean + rng.normal(size=(n, d)) @ p.scale_tril.T,
        "g": rng.normal(size=n),
        "G": rng.normal(size=(n, d)),
        "eps": rng.normal(size=(n, d)),
        "dL": np.tril(rng.normal(size=(d, d))),
    }
    return Instance("gaussian", seed, CONTINUOUS, names, dict(CLOSED))
