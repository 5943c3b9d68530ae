"""The ``mixture_prior`` setting: a mixture prior over z, a linear-Gaussian x|z."""

import numpy as np

from refvi import gaussian, mixture_kl
from refvi.checker.limits import check_draws
from refvi.checker.namespace import (
    CONTINUOUS,
    MC_DRAWS,
    Estimate,
    Fn,
    GaussianRule,
    Instance,
    MixtureRule,
)
from refvi.checker.settings._common import (
    CLOSED,
    N_DATA,
    ORDER_MIXTURE_PRIOR,
    REF_SCALE,
    _integral_continuous,
    _latent_names,
    _per_datum,
    _random_L,
)
from refvi.models import linear_gaussian as lg
from refvi.models import mixture
from refvi.models import mixture_prior as mp
from refvi.verify.montecarlo import mc_mean


def mixture_prior_setting(seed, J="2", d="2"):
    """z ~ sum_j pi_j N(a_j, B_j) (k = 1), x | z ~ N(W z + mu, diag(psi)).

    The posterior is a Gaussian mixture (``E_post`` sums one Gauss–Hermite
    rule per component); q_i is a random Gaussian. ``kl`` and ``elbo`` have no
    closed form: they are the model module's own quadrature,
    ``mixture_prior.kl_to_posterior_quadrature`` and ``elbo_quadrature``.
    Parameters ``weights``, ``a``, ``B``,
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
    qs = [gaussian.Gaussian(m_q[i], scale_tril=L_q[i]) for i in range(N_DATA)]
    q_batch = gaussian.Gaussian(m_q, scale_tril=L_q)
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
        kl=mp.kl_to_posterior_quadrature(model, x, q_batch, order=order).value,
        elbo=mp.elbo_quadrature(model, x, q_batch, order=order).value,
    )
    # drawn from a second generator, so the instance above stays as it was
    extra = np.random.default_rng((seed, 3))
    names.update(
        J=J,
        zs=extra.normal(size=(N_DATA, 7, k)) * 1.5,
        MC_x_given=_ancestral_moments(model, seed),
    )
    # derivations/mixture_kl.md: f = q_i (one Gaussian), g = the prior mixture
    prior_components = gaussian.Gaussian(model.a, scale_tril=model.L_B)
    names.update(
        D_qg=gaussian.kl(
            gaussian.Gaussian(m_q[:, None], scale_tril=L_q[:, None]), prior_components
        ),
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
        n = check_draws(n)
        rng = np.random.default_rng((seed, 2))
        means, ses = [], []
        for j in range(model.J):
            z = gaussian.sample(
                gaussian.Gaussian(model.a[j], scale_tril=model.L_B[j]), rng, n
            )
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
