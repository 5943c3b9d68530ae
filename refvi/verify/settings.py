"""The settings a derivation can be claimed for, each a random instance per seed.

``SETTINGS[name](seed, **options)`` returns an ``Instance``
(``refvi.verify.namespace``) built from ``numpy.random.default_rng(seed)``:
the same seed gives the same instance. Every per-datum setting holds ``n = 2``
data points; values that depend on the datum have shape (n,) and functions of
z return (n, m) (see ``namespace.Fn``).

Names every latent-variable setting provides (``derivations/README.md``):

- ``x`` (n, d); densities as functions of z: ``log_prior``, ``log_lik``,
  ``log_joint``, ``log_post`` (the exact posterior p(z|x)), ``log_q``;
- ``log_px`` (n,): log p(x) from the model's marginal;
- ``E_q(f)``, ``E_post(f)``, ``E_prior(f)``: expectations by Gauss–Hermite
  quadrature (exact sums for a discrete z);
- ``MC_q(f, n=4000)``: a Monte Carlo estimate of E_q f with its standard
  error, compared with ``~``;
- ``integral(f)``: the integral of f over z (adaptive quadrature for k = 1,
  a Gauss–Hermite rule divided by its weight for k = 2; the sum over the K
  values of a discrete z);
- closed forms ``kl`` = KL(q || p(z|x)) and ``elbo`` = F(q), each usable
  only in a side of a line whose LaTeX names it;
- the parameters (``W``, ``mu``, ``psi``, ...).
"""

import numpy as np
from scipy import special, stats

from refvi import categorical, gaussian, mixture_kl
from refvi.gaussian import _log_prob_whitened, _logdet_chol, _whiten
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lg_em
from refvi.models import mixture, mixture_em
from refvi.models import mixture_prior as mp
from refvi.verify.gradcheck import numerical_gradient
from refvi.verify.montecarlo import mc_mean
from refvi.verify.namespace import (
    CONTINUOUS,
    DISCRETE,
    MC_DRAWS,
    DiscreteRule,
    Estimate,
    Fn,
    GaussianRule,
    Instance,
    MixtureRule,
    monte_carlo,
    table_fn,
)
from refvi.verify.quadrature import expect_gaussian

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
    """integral(f) = int f(z) dz for each datum, shape (n,).

    The Gauss–Hermite rule of the reference N(center_i, L_ref_i L_ref_i^T)
    applied to f / N: sum_j w_j f(z_j) / N(z_j). With the reference
    N(m_q, 1.5 Sigma_q) it reaches about 1e-13 on integrands q(z) g(z) with
    g smooth (adaptive quadrature, ``quadrature.integrate``, agrees but takes
    seconds per integral in one dimension and minutes in two).
    """
    rule = GaussianRule(center, L_ref, order)
    inv_ref = np.exp(-rule.log_density(rule.points))

    def integral(f):
        values = np.asarray(f(rule.points), dtype=np.float64)
        return np.sum(rule.weights * values * inv_ref, axis=1)

    return integral


def _latent_names(seed, x, densities, log_px, q_rule, post_rule, prior_rule, integral):
    """The names shared by every latent-variable setting."""
    names = {"x": x, "n": x.shape[0], "d": x.shape[1], "log_px": log_px}
    names.update(densities)
    names.update(
        MC_q=monte_carlo(q_rule, seed),
        E_q=q_rule.expect,
        E_post=post_rule.expect,
        E_prior=prior_rule.expect,
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
    p = gaussian.Gaussian(rng.normal(size=d), _random_L(rng, d))
    q = gaussian.Gaussian(rng.normal(size=d), _random_L(rng, d))
    s_p, s_q = rng.normal(scale=0.4, size=(2, d))
    p_diag = gaussian.DiagGaussian(p.mean, s_p)
    q_diag = gaussian.DiagGaussian(q.mean, s_q)
    n = 3
    order = {1: 40, 2: 24}.get(d, 10)

    def rule(dist):
        return GaussianRule(dist.mean[None], dist.L[None], order)

    p_rule, q_rule, pd_rule, qd_rule = (rule(g) for g in (p, q, p_diag, q_diag))
    std_rule = rule(gaussian.standard_normal(d))
    names = {
        "d": d,
        "log_p": Fn(p_rule.log_density, "log_p"),
        "log_q": Fn(q_rule.log_density, "log_q"),
        "log_std": Fn(std_rule.log_density, "log_std"),
        "log_p_diag": Fn(pd_rule.log_density, "log_p_diag"),
        "log_q_diag": Fn(qd_rule.log_density, "log_q_diag"),
        "E_p": p_rule.expect,
        "E_p_diag": pd_rule.expect,
        "MC_p": monte_carlo(p_rule, seed),
        "integral": _integral_continuous(p.mean[None], REF_SCALE * p.L[None], order),
        "logpdf": lambda x, mean, Sigma: stats.multivariate_normal(mean, Sigma).logpdf(
            x
        ),
        "entropy": lambda mean, Sigma: stats.multivariate_normal(mean, Sigma).entropy(),
        "grad": _numerical_grad,
        "kl_fn": lambda mu_p, L_p, mu_q, L_q: gaussian.kl(
            gaussian.Gaussian(mu_p, L_p), gaussian.Gaussian(mu_q, L_q)
        ),
        "kl_diag_fn": lambda mu_p, s_p, mu_q, s_q: gaussian.kl(
            gaussian.DiagGaussian(mu_p, s_p), gaussian.DiagGaussian(mu_q, s_q)
        ),
        "kl_std_fn": lambda mu, L: gaussian.kl_standard_normal(
            gaussian.Gaussian(mu, L)
        ),
        "kl_std_diag_fn": lambda mu, s: gaussian.kl_standard_normal(
            gaussian.DiagGaussian(mu, s)
        ),
        "kl": np.array([gaussian.kl(p, q)]),
        "kl_std": np.array([gaussian.kl_standard_normal(p)]),
        "entropy_p": np.array([gaussian.entropy(p)]),
        "mu_p": p.mean,
        "L_p": p.L,
        "Sigma_p": p.cov,
        "mu_q": q.mean,
        "L_q": q.L,
        "Sigma_q": q.cov,
        "s_p": s_p,
        "s_q": s_q,
        "sigma_p": np.exp(s_p),
        "sigma_q": np.exp(s_q),
        "x": p.mean + rng.normal(size=(n, d)) @ p.L.T,
        "g": rng.normal(size=n),
        "G": rng.normal(size=(n, d)),
        "eps": rng.normal(size=(n, d)),
        "dL": np.tril(rng.normal(size=(d, d))),
    }
    return Instance("gaussian", seed, CONTINUOUS, names, dict(CLOSED))


def categorical_setting(seed, K="4"):
    """Two categorical distributions p = softmax(eta), q = softmax(eta_q).

    Logits ``eta``, ``eta_q`` (K,) with standard deviation 2, and ``eta_big``
    = ``eta`` + 1000 (the same distribution at logits of magnitude 1e3); a
    category ``k``; ``delta`` = I_K. Independent values from ``scipy.special``:
    ``p``, ``q`` (softmax) and ``ell``, ``ell_q`` (log-softmax), and the
    functions ``softmax``, ``log_softmax`` for gradients by ``grad``. The
    library's closed forms ``entropy_p`` = H[p] and ``kl`` = KL(p || q)
    (``refvi.categorical``). No latent variable.
    """
    K = int(K)
    rng = np.random.default_rng(seed)
    eta, eta_q = rng.normal(scale=2.0, size=(2, K))
    names = {
        "K": K,
        "k": int(rng.integers(K)),
        "eta": eta,
        "eta_q": eta_q,
        "eta_big": eta + 1000.0,
        "delta": np.eye(K),
        "p": special.softmax(eta),
        "q": special.softmax(eta_q),
        "ell": special.log_softmax(eta),
        "ell_q": special.log_softmax(eta_q),
        "softmax": special.softmax,
        "log_softmax": special.log_softmax,
        "grad": _numerical_grad,
        "entropy_p": np.array([categorical.entropy(eta)]),
        "kl": np.array([categorical.kl(eta, eta_q)]),
    }
    return Instance("categorical", seed, "none", names, dict(CLOSED))


#: The families q can be drawn from in the linear-Gaussian setting.
Q_FAMILIES = ("full", "diag", "posterior")


def linear_gaussian_setting(seed, k="2", d="3", q="full"):
    """z ~ N(0, I_k), x | z ~ N(W z + mu, diag(psi)); q_i a random Gaussian.

    ``q`` is the family of q: ``"full"`` (a random full covariance, default),
    ``"diag"`` (a random diagonal one) or ``"posterior"`` (q_i = p(z|x_i)
    exactly, the E-step's choice). The draws of the model and data do not
    depend on ``q``.

    Parameters ``W`` (d, k), ``mu`` (d,), ``psi`` (d,); ``m_q`` (n, k),
    ``L_q`` (n, k, k); posterior ``m_post`` (n, k), ``S_post`` (k, k).
    Closed forms: ``kl`` (``linear_gaussian.kl_to_posterior``), ``elbo``
    (``linear_gaussian.elbo``).
    """
    k, d = int(k), int(d)
    if q not in Q_FAMILIES:
        raise TypeError(f"q must be one of {', '.join(Q_FAMILIES)}; got {q!r}")
    rng = np.random.default_rng(seed)
    model = lg.LinearGaussian(
        rng.normal(size=(d, k)), rng.normal(size=d), rng.uniform(0.3, 1.5, size=d)
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
    q_rule = GaussianRule(m_q, L_q, order)
    post_rule = GaussianRule(post.m, L_post, order)
    prior_rule = GaussianRule(
        np.zeros((N_DATA, k)), np.broadcast_to(np.eye(k), (N_DATA, k, k)), order
    )
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
    names = _latent_names(
        seed,
        x,
        densities,
        lg.log_marginal(model, x),
        q_rule,
        post_rule,
        prior_rule,
        _integral_continuous(m_q, REF_SCALE * L_q, order),
    )
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
    mle = lg_em.ppca_mle(X, k)

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

    return {
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
        "W_ml": mle.W,
        "mu_ml": mle.mu,
        "sigma2_ml": float(mle.psi[0]),
    }


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
    n, K, d = x.shape[0], model.n_components, model.dim
    weights, means, L = model.weights, model.means, model.L

    def log_joint_fn(eta, means, L, covariance_type="full"):
        pi = np.exp(eta - np.max(eta))
        m = mixture.GaussianMixture(pi / np.sum(pi), means, L, covariance_type)
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
        "var_diag_new": fits["diag"].L ** 2,
        "var_sph_new": fits["spherical"].L ** 2,
    }


def mixture_prior_setting(seed, J="2", d="2"):
    """z ~ sum_j pi_j N(a_j, B_j) (k = 1), x | z ~ N(W z + mu, diag(psi)).

    The posterior is a Gaussian mixture (``E_post`` sums one Gauss–Hermite
    rule per component); q_i is a random Gaussian. ``kl`` and ``elbo`` have no
    closed form: they are ``mixture_prior.kl_to_posterior`` / ``elbo`` by the
    model module's own quadrature. Parameters ``weights``, ``a``, ``B``,
    ``W``, ``mu``, ``psi``, ``J``; points ``zs`` (n, 7, 1); ``MC_x_given``.
    For derivations/mixture_kl.md (f = q_i, g = the prior mixture): ``D_qg``
    (n, J), the Gaussian KLs D(q_i || N(a_j, B_j)) (``gaussian.kl``), and the
    closed forms ``kl_var`` = D_var(q_i || prior) and ``kl_var_ub1`` =
    D_varUB after one round of (MK.14) (``refvi.mixture_kl``).
    """
    J, d, k = int(J), int(d), 1
    rng = np.random.default_rng(seed)
    a = rng.normal(scale=1.0, size=(J, k))
    L_B = np.stack([_random_L(rng, k, 1.0) for _ in range(J)])
    model = mp.MixturePrior(
        rng.dirichlet(np.full(J, 3.0)),
        a,
        L_B,
        rng.normal(size=(d, k)),
        rng.normal(size=d),
        rng.uniform(1.0, 2.0, size=d),
    )
    z0 = a[rng.integers(J, size=N_DATA)]
    x = z0 @ model.W.T + model.mu + rng.normal(size=(N_DATA, d)) * np.sqrt(model.psi)
    post = mp.posterior(model, x)
    m_q = np.sum(np.exp(post.log_weights)[..., None] * post.m, axis=1)
    m_q = m_q + rng.normal(scale=0.5, size=m_q.shape)
    L_q = np.stack([_random_L(rng, k, 0.6) for _ in range(N_DATA)])
    order = ORDER_MIXTURE_PRIOR
    q_rule = GaussianRule(m_q, L_q, order)
    post_rule = MixtureRule(
        post.log_weights, post.m, np.broadcast_to(post.L_S, (N_DATA, J, k, k)), order
    )
    prior_rule = MixtureRule(
        np.broadcast_to(np.log(model.weights), (N_DATA, J)),
        np.broadcast_to(model.a, (N_DATA, J, k)),
        np.broadcast_to(model.L_B, (N_DATA, J, k, k)),
        order,
    )
    post_mixtures = [post.mixture(i) for i in range(N_DATA)]
    densities = {
        "log_prior": _per_datum(
            lambda xi, z: mixture.log_marginal(model.prior, z), x, "log_prior"
        ),
        "log_lik": _per_datum(
            lambda xi, z: lg.log_lik(model.likelihood, xi, z), x, "log_lik"
        ),
        "log_joint": _per_datum(
            lambda xi, z: mp.log_joint(model, xi, z), x, "log_joint"
        ),
        "log_post": Fn(
            lambda z: np.stack(
                [mixture.log_marginal(post_mixtures[i], z[i]) for i in range(N_DATA)]
            ),
            "log_post",
        ),
        "log_q": Fn(q_rule.log_density, "log_q"),
    }
    qs = [gaussian.Gaussian(m_q[i], L_q[i]) for i in range(N_DATA)]
    names = _latent_names(
        seed,
        x,
        densities,
        mp.log_marginal(model, x),
        q_rule,
        post_rule,
        prior_rule,
        _integral_continuous(m_q, REF_SCALE * L_q, 3 * order // 2),
    )
    names.update(
        k=k,
        weights=model.weights,
        a=model.a,
        B=model.L_B @ np.swapaxes(model.L_B, 1, 2),
        W=model.W,
        mu=model.mu,
        psi=model.psi,
        m_q=m_q,
        L_q=L_q,
        kl=np.array(
            [
                mp.kl_to_posterior(model, x[i], q, order=order).value
                for i, q in enumerate(qs)
            ]
        ),
        elbo=np.array(
            [mp.elbo(model, x[i], q, order=order).value for i, q in enumerate(qs)]
        ),
    )
    # drawn from a second generator, so the instance above stays as it was
    extra = np.random.default_rng((seed, 3))
    names.update(
        J=J,
        zs=extra.normal(size=(N_DATA, 7, k)) * 1.5,
        MC_x_given=_ancestral_moments(model, seed),
    )
    # derivations/mixture_kl.md: f = q_i (one Gaussian), g = the prior mixture
    prior_components = [gaussian.Gaussian(model.a[j], model.L_B[j]) for j in range(J)]
    names.update(
        D_qg=np.array([[gaussian.kl(q, c) for c in prior_components] for q in qs]),
        kl_var=np.array([mixture_kl.kl_variational(q, model.prior) for q in qs]),
        kl_var_ub1=np.array(
            [
                mixture_kl.kl_variational_upper_bound(q, model.prior, n_iter=1)
                for q in qs
            ]
        ),
    )
    closed = dict(CLOSED, kl_var=r"D_\{\\text\{var\}\}")
    closed["kl_var_ub1"] = r"D_\{\\text\{varUB\}\}"
    return Instance("mixture_prior", seed, CONTINUOUS, names, closed)


def _ancestral_moments(model, seed):
    """``MC_x_given(f, n=4000)``: for each prior component j, the Monte Carlo
    mean of f(x) over x drawn ancestrally given j (z ~ N(a_j, B_j), then
    x ~ N(W z + mu, Psi)), as an ``Estimate`` of shape (J, ...)."""

    def mc(f, n=MC_DRAWS):
        rng = np.random.default_rng((seed, 2))
        means, ses = [], []
        for j in range(model.J):
            z = gaussian.sample(gaussian.Gaussian(model.a[j], model.L_B[j]), rng, n)
            eps = rng.standard_normal((n, model.d))
            est = mc_mean(
                np.asarray(f(z @ model.W.T + model.mu + eps * np.sqrt(model.psi)))
            )
            means.append(est.mean)
            ses.append(est.se)
        return Estimate(np.stack(means), np.stack(ses), n)

    return mc


# ---------------------------------------------------------------------------
# EM: a data set, parameters theta before and theta' after one EM step.


def _em_names(seed, x, at, rules, log_px):
    """Names of an EM setting from per-parameter density factories.

    ``at[label]`` maps a parameter label ("" for theta, "_new" for the exact
    M-step's theta', "_vnew" for the variational M-step's theta'') to a dict
    of ``log_joint`` and ``log_post`` functions of z; ``rules`` holds the E-step
    posterior ``post`` and the restricted q ``q``.
    """
    names = {"x": x, "n": x.shape[0], "d": x.shape[1]}
    for label, dens in at.items():
        for key, fn in dens.items():
            names[key + label] = fn
    for label, value in log_px.items():
        names["log_px" + label] = value
    names.update(
        E_post=rules["post"].expect,
        E_q=rules["q"].expect,
        log_q=Fn(rules["q"].log_density, "log_q"),
        MC_q=monte_carlo(rules["q"], seed),
    )
    return names


def em_linear_gaussian_setting(seed, k="2", d="4", n="20"):
    """One EM step of factor analysis on n data points (k = 2, d = 4).

    theta = (W, mu, psi) random; the data come from another random model.
    E-step q*_i = p_theta(z|x_i) (``E_post``, ``log_post``); exact M-step
    theta' = ``linear_gaussian_em.m_step(x, q*)`` (``log_joint_new``,
    ``log_post_new``, ``log_px_new``). Restricted q: the best fully factorised
    Gaussian, q_i = N(m_i, diag(1 / diag(S^{-1}))) (``log_q``, ``E_q``),
    which cannot represent the correlated posterior; its M-step gives theta''
    (``log_joint_vnew``, ``log_px_vnew``).
    """
    k, d, n = int(k), int(d), int(n)
    rng = np.random.default_rng(seed)

    def random_model():
        return lg.LinearGaussian(
            rng.normal(size=(d, k)), rng.normal(size=d), rng.uniform(0.3, 1.5, size=d)
        )

    truth, model = random_model(), random_model()
    z = rng.normal(size=(n, k))
    x = z @ truth.W.T + truth.mu + rng.normal(size=(n, d)) * np.sqrt(truth.psi)
    post = lg_em.e_step(x, model)
    # mean field: the posterior precision is S^{-1} = I + W^T Psi^{-1} W (LG.5);
    # the best factorised Gaussian keeps its diagonal
    prec_diag = 1.0 + np.sum(model.W**2 / model.psi[:, None], axis=0)
    S_mf = np.diag(1.0 / prec_diag)
    q_mf = lg.Posterior(post.m, S_mf, np.sqrt(S_mf))
    models = {
        "": model,
        "_new": lg_em.m_step(x, post),
        "_vnew": lg_em.m_step(x, q_mf),
    }

    def dens(m):
        return {
            "log_joint": _per_datum(
                lambda xi, zi: lg.log_joint(m, xi, zi), x, "log_joint"
            ),
            "log_post": _per_datum(
                lambda xi, zi: lg.log_posterior(m, xi, zi), x, "log_post"
            ),
        }

    order = 12  # integrands are quadratic in z
    rules = {
        "post": GaussianRule(post.m, np.broadcast_to(post.L_S, (n, k, k)), order),
        "q": GaussianRule(q_mf.m, np.broadcast_to(q_mf.L_S, (n, k, k)), order),
    }
    names = _em_names(
        seed,
        x,
        {label: dens(m) for label, m in models.items()},
        rules,
        {label: lg.log_marginal(m, x) for label, m in models.items()},
    )
    return Instance("em_linear_gaussian", seed, CONTINUOUS, names, dict(CLOSED))


#: Weight a restricted (hard) q gives to the other components: q_i =
#: (1 - HARD_EPS) onehot(argmax_k r_ik) + HARD_EPS / K.
HARD_EPS = 0.1


def em_mixture_setting(seed, K="3", d="2", n="30"):
    """One EM step of a full-covariance Gaussian mixture on n data points.

    theta random; E-step responsibilities r = p_theta(z|x) (``E_post``);
    exact M-step theta' = ``mixture_em.m_step(x, r, "full", reg_covar=0)``.
    Restricted q: near-hard assignments q_i = 0.9 onehot(argmax r_i) + 0.1/K
    (``log_q``), with its own M-step theta'' (``log_joint_vnew``).
    """
    K, d, n = int(K), int(d), int(n)
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(K, d))
    x = centers[rng.integers(K, size=n)] + rng.normal(size=(n, d))
    model = mixture.GaussianMixture(
        rng.dirichlet(np.full(K, 3.0)),
        rng.normal(scale=1.5, size=(K, d)),
        np.stack([_random_L(rng, d) for _ in range(K)]),
    )
    r = mixture_em.e_step(model, x)
    hard = np.full((n, K), HARD_EPS / K)
    hard[np.arange(n), np.argmax(r, axis=1)] += 1.0 - HARD_EPS
    models = {
        "": model,
        "_new": mixture_em.m_step(x, r, "full", reg_covar=0.0),
        "_vnew": mixture_em.m_step(x, hard, "full", reg_covar=0.0),
    }

    def dens(m):
        return {
            "log_joint": table_fn(mixture.log_joint(m, x), "log_joint"),
            "log_post": table_fn(mixture.log_responsibilities(m, x), "log_post"),
        }

    rules = {"post": DiscreteRule(np.log(r)), "q": DiscreteRule(np.log(hard))}
    names = _em_names(
        seed,
        x,
        {label: dens(m) for label, m in models.items()},
        rules,
        {label: mixture.log_marginal(m, x) for label, m in models.items()},
    )
    return Instance("em_mixture", seed, DISCRETE, names, dict(CLOSED))


# ---------------------------------------------------------------------------
# The aggregated posterior: integrals over x.


def _conditional_log_density(z, means, L):
    """log N(z_j; means_i, L L^T) for points z (m, k) and means (N, k) -> (N, m)."""
    N, k = means.shape
    diff = (z[None, :, :] - means[:, None, :]).reshape(-1, k)
    u = _whiten(diff, np.zeros(k), L)
    return _log_prob_whitened(u, _logdet_chol(L)).reshape(N, z.shape[0])


def _expectation_over_x(mean, L, order):
    """E_{x ~ N(mean, L L^T)} f(x) by Gauss–Hermite (``quadrature.expect_gaussian``)."""

    def expect(f):
        return expect_gaussian(f, mean, L, order=order).value

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
    ``linear_gaussian.kl_to_posterior``). Expectations over x by a 40 x 40
    Gauss–Hermite rule: ``E_data``, ``E_data2``, ``E_model``. Closed forms:
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
    order = 40

    def log_enc(z, x):
        return _conditional_log_density(z, x @ A.T + b, L_enc)

    def log_post(z, x):
        return _conditional_log_density(z, lg.posterior(model, x).m, L_S)

    def log_enc_flip(z, x):
        return _conditional_log_density(z, -lg.posterior(model, x).m, L_S)

    def log_enc_prior(z, x):
        return np.broadcast_to(lg.log_prior(model, z), (x.shape[0], z.shape[0]))

    def gauss(mean, Sigma):
        return gaussian.Gaussian(mean, np.linalg.cholesky(Sigma))

    q_agg = gauss(A @ m_data + b, A @ C_data @ A.T + sigma_q**2)
    p_agg = gauss(M @ (m_data - model.mu), M @ C_data @ M.T + S)
    q_agg_model = gauss(A @ model.mu + b, A @ C @ A.T + sigma_q**2)
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
        "E_data": _expectation_over_x(m_data, L_data, order),
        "E_data2": _expectation_over_x(m_data2, np.linalg.cholesky(C_data2), order),
        "E_model": _expectation_over_x(model.mu, np.linalg.cholesky(C), order),
        "log_q_agg": lambda z: gaussian.log_prob(q_agg, z),
        "log_p_agg": lambda z: gaussian.log_prob(p_agg, z),
        "kl_agg": np.array([gaussian.kl_standard_normal(q_agg_model)]),
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


SETTINGS = {
    "gaussian": gaussian_setting,
    "categorical": categorical_setting,
    "linear_gaussian": linear_gaussian_setting,
    "mixture": mixture_setting,
    "mixture_prior": mixture_prior_setting,
    "em_linear_gaussian": em_linear_gaussian_setting,
    "em_mixture": em_mixture_setting,
    "aggregated": aggregated_setting,
}
