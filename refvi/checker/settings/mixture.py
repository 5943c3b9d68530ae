"""The ``mixture`` setting: a Gaussian mixture over a discrete z."""

import numpy as np
from scipy import stats

from refvi import categorical
from refvi.checker.namespace import (
    DISCRETE,
    DiscreteRule,
    Instance,
    table_fn,
)
from refvi.checker.settings._common import (
    CLOSED,
    N_DATA,
    _latent_names,
    _numerical_grad,
    _random_L,
)
from refvi.models import mixture, mixture_em


def mixture_setting(seed, K="3", d="2"):
    """Gaussian mixture: z in {0..K-1} with p(z=k) = pi_k, x | z=k ~ N(mu_k, Sigma_k).

    q_i is a random categorical (logits ``q_logits`` (n, K)). Expectations and
    integrals over z are exact sums. Parameters ``weights`` (K,), ``means``
    (K, d), ``covariances`` (K, d, d). Closed forms: ``kl``
    (``mixture.kl_to_posterior``), ``elbo`` (``mixture.elbo``).
    """
    K, d = int(K), int(d)
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(K, 3.0))
    means = rng.normal(scale=1.5, size=(K, d))
    L = np.stack([_random_L(rng, d) for _ in range(K)])
    model = mixture.GaussianMixture(weights, means, L)
    x = means[rng.integers(K, size=N_DATA)] + rng.normal(size=(N_DATA, d))
    q_logits = rng.normal(size=(N_DATA, K))
    log_prior = np.broadcast_to(mixture.log_prior(model), (N_DATA, K))
    log_lik = mixture.log_lik(model, x)
    log_post = mixture.log_responsibilities(model, x)
    log_q = categorical.log_softmax(q_logits)
    q_rule, post_rule = DiscreteRule(log_q), DiscreteRule(log_post)
    prior_rule = DiscreteRule(log_prior)
    densities = {
        "log_prior": table_fn(log_prior, "log_prior"),
        "log_lik": table_fn(log_lik, "log_lik"),
        "log_joint": table_fn(mixture.log_joint(model, x), "log_joint"),
        "log_post": table_fn(log_post, "log_post"),
        "log_q": table_fn(log_q, "log_q"),
    }
    names = _latent_names(
        seed,
        x,
        densities,
        mixture.log_marginal(model, x),
        q_rule,
        post_rule,
        prior_rule,
        q_rule.sum,
    )
    names.update(
        K=K,
        weights=model.weights,
        means=model.means,
        covariances=model.dense_covariances(),
        q_logits=q_logits,
        kl=mixture.kl_to_posterior(model, x, q_logits),
        elbo=mixture.elbo(model, x, q_logits),
    )
    names.update(_mixture_extras(model, x, q_logits, rng))
    return Instance("mixture", seed, DISCRETE, names, dict(CLOSED))


#: The covariance floor (reg_covar) of the mixture setting's M-steps; large
#: enough that its terms are visible at the checker's tolerance.
REG_COVAR = 0.05


def _mixture_extras(model, x, q_logits, rng):
    """The names derivations/mixture.md uses beyond the common ones."""
    n, K, d = x.shape[0], model.n_components, model.d
    weights, means, L = model.weights, model.means, model.L

    def log_joint_fn(eta, means, scale, covariance_type="full"):
        # scale: the Cholesky factor L (full, tied) or the standard deviations
        # std (diag, spherical)
        pi = np.exp(eta - np.max(eta))
        if covariance_type in ("full", "tied"):
            m = mixture.GaussianMixture(pi / np.sum(pi), means, scale, covariance_type)
        else:
            m = mixture.GaussianMixture(
                pi / np.sum(pi), means, None, covariance_type, std=scale
            )
        return mixture.log_joint(m, x)

    def full(eta, means, L):
        pi = np.exp(eta - np.max(eta))
        return mixture.GaussianMixture(pi / np.sum(pi), means, L)

    L_tied = _random_L(rng, d)
    s_diag = rng.uniform(0.5, 1.5, size=(K, d))
    s_sph = rng.uniform(0.5, 1.5, size=K)
    diff = x[:, None, :] - means  # (n, K, d)
    n_X = 40
    X = means[rng.integers(K, size=n_X)] + rng.normal(size=(n_X, d))
    R_X = mixture.responsibilities(model, X)
    fits = {
        t: mixture_em.m_step(X, R_X, t, reg_covar=REG_COVAR)
        for t in ("full", "tied", "diag", "spherical")
    }
    r = mixture.responsibilities(model, x)
    return {
        "labels": np.broadcast_to(np.arange(K), (n, K)),
        "eta": np.log(weights),
        "L": L,
        "L_tied": L_tied,
        "s_diag": s_diag,
        "s_sph": s_sph,
        "Y": np.linalg.solve(L[None], diff[..., None])[..., 0],
        "Y_tied": np.linalg.solve(L_tied, diff[..., None])[..., 0],
        "Y_diag": diff / s_diag,
        "Y_sph": diff / s_sph[:, None],
        "gw": rng.normal(size=(n, K)),
        "logpdf": lambda y, mean, Sigma: stats.multivariate_normal(mean, Sigma).logpdf(
            y
        ),
        "grad": _numerical_grad,
        "log_joint_fn": log_joint_fn,
        "kl_of": lambda eta, means, L: mixture.kl_to_posterior(
            full(eta, means, L), x, q_logits
        ),
        "elbo_of": lambda eta, means, L: mixture.elbo(full(eta, means, L), x, q_logits),
        "log_px_of": lambda eta, means, L: mixture.log_marginal(full(eta, means, L), x),
        "Q_aux": mixture_em.auxiliary(model, x, r),
        "Q_aux_reg": mixture_em.auxiliary(model, x, r, reg_covar=REG_COVAR),
        "reg": REG_COVAR,
        "X": X,
        "n_X": n_X,
        "R_X": R_X,
        "N_k": np.sum(R_X, axis=0),
        "s_k": R_X.T @ X,
        "S_k": np.einsum("ik,id,ie->kde", R_X, X, X),
        "weights_new": fits["full"].weights,
        "means_new": fits["full"].means,
        "cov_new": fits["full"].dense_covariances(),
        "cov_tied_new": fits["tied"].dense_covariances()[0],
        "var_diag_new": fits["diag"].std ** 2,
        "var_sph_new": fits["spherical"].std ** 2,
    }
