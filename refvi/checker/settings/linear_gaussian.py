"""The ``linear_gaussian`` setting: a linear-Gaussian latent model, a q and data."""

import numpy as np
from scipy import stats

from refvi.checker.namespace import (
    CONTINUOUS,
    Fn,
    GaussianRule,
    Instance,
)
from refvi.checker.settings._common import (
    CLOSED,
    N_DATA,
    REF_SCALE,
    _integral_continuous,
    _latent_names,
    _numerical_grad,
    _per_datum,
    _random_L,
)
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lg_em

Q_FAMILIES = ("full", "diag", "posterior")


def _fixed(name, value, shape):
    """The option ``name`` (a number, for every entry) as an array of
    ``shape``, or None when not given."""
    if value is None:
        return None
    try:
        return np.full(shape, float(value))
    except ValueError:
        raise ValueError(f"{name} must be a number; got {value!r}") from None


def linear_gaussian_setting(seed, k=None, d="3", q="full", W=None, mu=None, psi=None):
    """z ~ N(0, I_k), x | z ~ N(W z + mu, diag(psi)); q_i a random Gaussian.

    ``q`` is the family of q: ``"full"`` (a random full covariance, default),
    ``"diag"`` (a random diagonal one) or ``"posterior"`` (q_i = p(z|x_i)
    exactly, the E-step's choice). The draws of the model and data do not
    depend on ``q``. ``W``, ``mu``, ``psi`` fix the model's parameters (a
    number, for every entry: ``linear_gaussian(k=1, d=1, W=1, mu=0,
    psi=0.5)``); the others are drawn as without them.

    Parameters ``W`` (d, k), ``mu`` (d,), ``psi`` (d,); ``m_q`` (n, k),
    ``L_q`` (n, k, k); posterior ``m_post`` (n, k), ``S_post`` (k, k).
    Closed forms: ``kl`` (``linear_gaussian.kl_to_posterior``), ``elbo``
    (``linear_gaussian.elbo``).
    """
    d = int(d)
    k = min(2, d) if k is None else int(k)  # linear_gaussian(d=1) has k = 1
    if q not in Q_FAMILIES:
        raise TypeError(f"q must be one of {', '.join(Q_FAMILIES)}; got {q!r}")
    rng = np.random.default_rng(seed)
    drawn = (rng.normal(size=(d, k)), rng.normal(size=d), rng.uniform(0.3, 1.5, size=d))
    fixed = (_fixed("W", W, (d, k)), _fixed("mu", mu, d), _fixed("psi", psi, d))
    model = lg.LinearGaussian(
        *(a if f is None else f for a, f in zip(drawn, fixed, strict=True))
    )
    x = rng.normal(size=(N_DATA, d)) * 1.5 + model.mu
    post = lg.posterior(model, x)
    m_q = post.m + rng.normal(scale=0.7, size=post.m.shape)
    L_q = np.stack([_random_L(rng, k, 0.8) for _ in range(N_DATA)])
    L_post = np.broadcast_to(post.L_S, (N_DATA, k, k))
    if q == "diag":
        L_q = L_q * np.eye(k)
    elif q == "posterior":
        m_q, L_q = post.m, np.array(L_post)
    order = 32  # the integrands here are quadratic in z except in integral()
    names = linear_gaussian_latent_names(seed, model, x, m_q, L_q, order)
    names.update(
        k=k,
        W=model.W,
        mu=model.mu,
        psi=model.psi,
        m_q=m_q,
        L_q=L_q,
        Sigma_q=L_q @ np.swapaxes(L_q, 1, 2),
        m_post=post.m,
        S_post=post.S,
        L_post=np.ascontiguousarray(L_post),
        kl=lg.kl_to_posterior(model, x, m_q, L_q),
        elbo=lg.elbo(model, x, m_q, L_q),
        integral_post=_integral_continuous(post.m, REF_SCALE * L_post, order),
    )
    names.update(_linear_gaussian_extras(model, x, rng, k, d, order))
    return Instance("linear_gaussian", seed, CONTINUOUS, names, dict(CLOSED))


def linear_gaussian_latent_names(seed, model, x, m_q, L_q, order):
    """The common latent names (``_common._latent_names``) of a
    linear-Gaussian ``model`` at data ``x`` (n, d) with q_i = N(m_q_i, L_q_i
    L_q_i^T): densities of z, ``log_px``, Gauss–Hermite rules of ``order``
    under q, the posterior and the prior, and ``integral``."""
    n, k = m_q.shape
    post = lg.posterior(model, x)
    q_rule = GaussianRule(m_q, L_q, order)
    densities = {
        "log_prior": _per_datum(lambda xi, z: lg.log_prior(model, z), x, "log_prior"),
        "log_lik": _per_datum(lambda xi, z: lg.log_lik(model, xi, z), x, "log_lik"),
        "log_joint": _per_datum(
            lambda xi, z: lg.log_joint(model, xi, z), x, "log_joint"
        ),
        "log_post": _per_datum(
            lambda xi, z: lg.log_posterior(model, xi, z), x, "log_post"
        ),
        "log_q": Fn(q_rule.log_density, "log_q"),
    }
    return _latent_names(
        seed,
        x,
        densities,
        lg.log_marginal(model, x),
        q_rule,
        GaussianRule(post.m, np.broadcast_to(post.L_S, (n, k, k)), order),
        GaussianRule(np.zeros((n, k)), np.broadcast_to(np.eye(k), (n, k, k)), order),
        _integral_continuous(m_q, REF_SCALE * L_q, order),
    )


def _linear_gaussian_extras(model, x, rng, k, d, order):
    """The names derivations/linear_gaussian.md uses beyond the common ones."""
    P = np.diag(1.0 / model.psi)
    C = model.cov
    n_X = 40
    X = rng.normal(size=(n_X, k)) @ model.W.T + model.mu
    X = X + rng.normal(size=(n_X, d)) * np.sqrt(model.psi)
    post_X = lg.posterior(model, X)
    stats_X = lg_em.sufficient_stats(X)
    new = lg_em.m_step(X, post_X)
    iso = lg_em.m_step(X, post_X, noise="isotropic")

    def ecll_quad(W, mu, psi, m_q, L_q):
        """E_q[log p(x_i, z)] per datum by Gauss–Hermite (exact: the integrand
        is quadratic in z), for parameters given as arrays."""
        m = lg.LinearGaussian(W, mu, psi)
        rule = GaussianRule(m_q, L_q, 4)
        return rule.expect(_per_datum(lambda xi, z: lg.log_joint(m, xi, z), x, "lj"))

    def elbo_quad(W, mu, psi, m_q, L_q):
        """ELBO_i = E_q[log p(x_i, z) - log q_i(z)] by Gauss–Hermite."""
        m = lg.LinearGaussian(W, mu, psi)
        rule = GaussianRule(m_q, L_q, 4)
        log_joint = _per_datum(lambda xi, z: lg.log_joint(m, xi, z), x, "lj")
        return rule.expect(log_joint - Fn(rule.log_density, "log_q"))

    names = {
        "C": C,
        "P": P,
        "M": np.eye(k) + model.W.T @ P @ model.W,
        "b": (x - model.mu - lg.posterior(model, x).m @ model.W.T) / model.psi,
        "zs": rng.normal(size=(x.shape[0], 5, k)),
        "b_vec": rng.normal(size=k),
        "A_sym": (lambda A: A + A.T)(rng.normal(size=(k, k))),
        "g": rng.normal(size=x.shape[0]),
        "logpdf": lambda y, mean, Sigma: stats.multivariate_normal(mean, Sigma).logpdf(
            y
        ),
        "entropy": lambda mean, Sigma: stats.multivariate_normal(mean, Sigma).entropy(),
        "grad": _numerical_grad,
        "ecll_quad": ecll_quad,
        "elbo_quad": elbo_quad,
        "X": X,
        "n_X": n_X,
        "xbar": stats_X.xbar,
        "Sigma_hat": stats_X.Sigma_hat,
        "m_X": post_X.m,
        "A_post": post_X.S @ model.W.T @ P,
        "W_new": new.W,
        "mu_new": new.mu,
        "psi_new": new.psi,
        "sigma2_new": float(iso.psi[0]),
        "F_new": np.sum(lg.elbo(new, X, post_X.m, post_X.L_S)),
        "psi_floor": lg_em.PSI_FLOOR_REL * float(np.mean(np.diag(stats_X.Sigma_hat))),
    }
    if k < d:  # the pPCA MLE exists only with fewer factors than dimensions
        mle = lg_em.ppca_mle(X, k)
        names.update(W_ml=mle.W, mu_ml=mle.mu, sigma2_ml=float(mle.psi[0]))
    return names
