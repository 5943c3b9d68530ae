"""The EM settings ``em_linear_gaussian`` and ``em_mixture``: one EM step."""

import numpy as np

from refvi.checker.namespace import (
    CONTINUOUS,
    DISCRETE,
    DiscreteRule,
    Fn,
    GaussianRule,
    Instance,
    monte_carlo,
    table_fn,
)
from refvi.checker.settings._common import (
    CLOSED,
    _per_datum,
    _random_L,
)
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lg_em
from refvi.models import mixture, mixture_em


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
        E_post=rules["post"].measure,
        E_q=rules["q"].measure,
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
    # the Gaussians behind the two expectations (the LaTeX checker's z rule)
    names.update(m_post=post.m, L_post=post.L_S, L_q=q_mf.L_S)
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
    r = mixture_em.e_step(x, model)
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
    names["K"] = K
    return Instance("em_mixture", seed, DISCRETE, names, dict(CLOSED))


# ---------------------------------------------------------------------------
# The aggregated posterior: integrals over x.
