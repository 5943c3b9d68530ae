"""The ``amortized`` setting: a linear Gaussian encoder, a linear-Gaussian
decoder, a data set, and the ELBO's gradient estimators as functions of eps."""

import numpy as np

from refvi import gaussian
from refvi.checker.measured import Measured
from refvi.checker.namespace import (
    CONTINUOUS,
    Estimate,
    Fn,
    GaussianRule,
    Instance,
    refine,
    standard_rule,
)
from refvi.checker.settings._common import (
    CLOSED,
    N_DATA,
    _numerical_grad,
    _per_datum,
)
from refvi.checker.settings.linear_gaussian import linear_gaussian_latent_names
from refvi.inference import aggregate, estimators, vae
from refvi.inference.encoder import (
    LinearEncoder,
    QParams,
    encode,
    exact_posterior_encoder,
)
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lg_em
from refvi.verify.montecarlo import mc_mean

#: Gauss–Hermite order per coordinate of ``E_eps`` for one-sample estimators:
#: their values and gradients are polynomials of degree <= 4 in each
#: coordinate of eps, integrated exactly by any order >= 3; and the most
#: nodes a refined ``E_eps`` may reach (each node is one draw of eps for
#: every datum).
ORDER_EPS = 5
MAX_NODES_EPS = 10**4

#: Data points of the data set ``X`` (the linear VAE's optimum, ELBO surgery).
N_X = 30

#: LaTeX that names each closed form of this setting (searched in the side a
#: check computes, as ``_common.CLOSED``).
CLOSED_AMORTIZED = {
    "elbo_of": CLOSED["elbo"],
    "elbo_enc": CLOSED["elbo"],
    "grad_elbo": r"\\nabla|\\partial",
    "grad_enc": r"\\nabla|\\partial",
    "g_m": r"\\nabla|\\partial",
    "g_log_std": r"\\nabla|\\partial",
    "elbo_X": CLOSED["elbo"],
    "log_px_X": r"p\(|\\log p",
    "elbo_col": CLOSED["elbo"],
    "grad_opt": r"\\nabla|\\partial",
    "grad_col": r"\\nabla|\\partial",
    "log_px_col": r"p\(|\\log p",
    "expected_kl": r"KL",
    "mutual_info_g": r"I_",
    "expected_kl_g": r"KL",
    "kl_agg_g": r"KL",
    "kl_agg": r"KL",
}


def _flat(grads, keys, per_draw):
    """The gradients of ``keys`` flattened and concatenated; per draw (J, P)."""
    if per_draw:
        J = grads[keys[0]].shape[0]
        return np.concatenate([grads[k].reshape(J, -1) for k in keys], axis=1)
    return np.concatenate([np.ravel(grads[k]) for k in keys])


def _eps_operators(n, k, seed):
    """``E_eps`` and ``MC_eps``: expectations over the noise eps of each datum.

    A function of eps takes J draws, eps (J, n, k), and returns one result per
    draw (J, ...). ``E_eps(f)`` = sum_j w_j f(eps_j) by a tensor Gauss–Hermite
    rule of order ``ORDER_EPS`` over the k coordinates of one datum's noise,
    the same node for every datum: exact for every output whose datum-i part
    depends on eps_i alone and is a polynomial of degree < 2 ``ORDER_EPS`` in
    it, and for sums over the data of such parts, which is what the
    estimators return (a product across data is not such a function). A
    ``Measured`` value refined under its error estimate (``namespace.refine``,
    at most ``MAX_NODES_EPS`` nodes). ``MC_eps(f, n_draws=4000)``: the mean
    over n draws with its standard error (an ``Estimate``).
    """

    def E_eps(f):
        def expect_at(order):
            u, w = standard_rule(order, k)
            eps = np.broadcast_to(u[:, None, :], (u.shape[0], n, k))
            return np.tensordot(w, np.asarray(f(eps), dtype=np.float64), (0, 0))

        return refine(expect_at, ORDER_EPS, k, MAX_NODES_EPS)

    def MC_eps(f, n_draws=4000):
        eps = np.random.default_rng((seed, 2)).standard_normal((n_draws, n, k))
        est = mc_mean(np.asarray(f(eps), dtype=np.float64))
        return Estimate(est.mean, est.se, est.n)

    return E_eps, MC_eps


def _estimator_functions(model, x, q, q_post):
    """Each estimator as functions of eps (J, n, k): ``f_<name>`` its value
    per draw (J, n), ``g_<name>`` its gradient per draw (J, P) w.r.t.
    (m_q, log_std_q, W, mu, psi), flattened in that order. Computed by
    ``refvi.inference.estimators`` with ``per_sample=True``."""
    keys = ("m_q", "log_std_q", "W", "mu", "psi")
    b = estimators.elbo_analytic_and_grad(model, x, q)[0]  # baseline: the ELBO
    calls = {
        "kl": lambda e: estimators.elbo_reparam_and_grad(
            model, x, q, e, form="kl", per_sample=True
        ),
        "entropy": lambda e: estimators.elbo_reparam_and_grad(
            model, x, q, e, form="entropy", per_sample=True
        ),
        "sampled": lambda e: estimators.elbo_reparam_and_grad(
            model, x, q, e, form="sampled", per_sample=True
        ),
        "path": lambda e: estimators.elbo_path_derivative_and_grad(
            model, x, q, e, per_sample=True
        ),
        "score": lambda e: estimators.elbo_score_and_grad(
            model, x, q, e, per_sample=True
        ),
        "score_b": lambda e: estimators.elbo_score_and_grad(
            model, x, q, e, baseline=b, per_sample=True
        ),
    }
    names = {}
    for name, call in calls.items():
        if name in ("kl", "entropy", "sampled"):  # path and score: as sampled
            names["f_" + name] = lambda e, call=call: call(e)[0]
        names["g_" + name] = lambda e, call=call: _flat(call(e)[1], keys, True)
    # at q = p(z|x): the gradients w.r.t. q only, (m_q, L_q) per draw
    q_keys = ("m_q", "L_q")
    names["g_path_post"] = lambda e: _flat(
        estimators.elbo_path_derivative_and_grad(model, x, q_post, e, per_sample=True)[
            1
        ],
        q_keys,
        True,
    )
    names["g_sampled_post"] = lambda e: _flat(
        estimators.elbo_reparam_and_grad(
            model, x, q_post, e, form="sampled", per_sample=True
        )[1],
        q_keys,
        True,
    )

    def iwae(e):
        """IWAE_K per draw, e (J, K, n, k) -> (J, n): the J draws as J copies
        of the data (``estimators.iwae_and_grad`` is batched over data)."""
        J, K, n, k = e.shape
        xs = np.tile(x, (J, 1))
        qs = QParams(np.tile(q.m, (J, 1)), np.tile(q.log_std, (J, 1)))
        eps = np.swapaxes(e, 0, 1).reshape(K, J * n, k)
        return estimators.iwae_and_grad(model, xs, qs, eps)[0].reshape(J, n)

    names["iwae"] = iwae
    names["g_iwae"] = lambda e: _flat(
        estimators.iwae_and_grad(model, x, q, e)[1], keys, False
    )
    return names


def _data_set_names(X, k):
    """The data set ``X`` (N_X, d): the linear VAE's closed-form optimum
    (``vae.optimum``) with sigma^2 fitted and with sigma^2 fixed between the
    first two eigenvalues (posterior collapse), and ELBO surgery
    (``aggregate.surgery_gaussian``, ``surgery_empirical_mc``,
    ``kl_aggregate_empirical_quad``)."""
    opt = vae.optimum(X, k)
    lam = opt.eigenvalues
    sigma2_col = float(0.5 * (lam[k - 2] + lam[k - 1]) if k >= 2 else 2 * lam[0])
    col = vae.optimum(X, k, sigma2=sigma2_col)
    stats = lg_em.sufficient_stats(X)

    def parts(o):
        q = encode(o.encoder, X)
        elbo, grads = vae.elbo_and_grad(o.encoder, o.model, X, estimator="analytic")
        return q, elbo, grads

    q_opt, elbo_X, grads_opt = parts(opt)
    _, elbo_col, grads_col = parts(col)
    # the noise is isotropic: d/dlog sigma2 = sigma2 sum_j d/dpsi_j
    grads_opt = vae._chain_noise(grads_opt, opt.model, "isotropic")

    L_opt = np.diag(np.exp(opt.encoder.log_std))
    rule_opt = GaussianRule(q_opt.m, np.broadcast_to(L_opt, (len(X), k, k)), 6)
    names = {
        "X": X,
        "n_X": X.shape[0],
        "xbar": stats.xbar,
        "Sigma_hat": stats.Sigma_hat,
        "lam": lam,
        "W_opt": opt.model.W,
        "mu_opt": opt.model.mu,
        "sigma2_opt": float(opt.model.psi[0]),
        "A_opt": opt.encoder.A,
        "c_opt": opt.encoder.c,
        "log_std_opt": opt.encoder.log_std,
        "S_opt": lg.posterior(opt.model, X[:1]).S,
        "elbo_X": elbo_X,
        "log_px_X": lg.log_marginal(opt.model, X),
        "U": np.linalg.eigh(stats.Sigma_hat)[1][:, ::-1],
        "E_q_X": rule_opt.measure,
        "log_q_X": Fn(rule_opt.log_density, "log_q_X"),
        "log_joint_X": _per_datum(
            lambda xi, z: lg.log_joint(opt.model, xi, z), X, "log_joint_X"
        ),
        "grad_opt": _flat(
            grads_opt, ("A", "c", "log_std", "W", "mu", "log_sigma2"), False
        ),
        "sigma2_col": sigma2_col,
        "collapsed": col.collapsed.astype(float),
        "W_col": col.model.W,
        "A_col": col.encoder.A,
        "log_std_col": col.encoder.log_std,
        "elbo_col": elbo_col,
        "log_px_col": lg.log_marginal(col.model, X),
        "grad_col": _flat(grads_col, ("A", "c", "log_std", "W", "mu"), False),
    }
    return names


def amortized_setting(seed, k="2", d="4"):
    """Amortized inference: q_phi(z|x) = N(A x + c, diag(exp(2 log_std))) and
    z ~ N(0, I_k), x | z ~ N(W z + mu, diag(psi)) (k = 2, d = 4).

    The common latent names (``derivations/README.md``) for n = 2 data
    points ``x`` with q_i = encoder(x_i): ``m_q``, ``log_std_q`` (n, k),
    ``L_q`` (n, k, k), closed forms ``kl``, ``elbo``. Encoder ``A, c,
    log_std``; decoder ``W, mu, psi``.

    Estimators (``refvi.inference.estimators``) as functions of the noise
    eps (J, n, k), J draws: values ``f_kl, f_entropy, f_sampled`` (J, n)
    (SGVB-B, entropy form, SGVB-A) and gradients ``g_kl, g_entropy,
    g_sampled, g_path, g_score, g_score_b`` (J, P) w.r.t. (m_q, log_std_q,
    W, mu, psi) flattened (``score_b``: baseline the closed-form ELBO); at
    q = p(z|x) the gradients w.r.t. (m_q, L_q) ``g_path_post``,
    ``g_sampled_post``; ``iwae`` (eps (J, K, n, k) -> (J, n)) and ``g_iwae``
    (eps (K, n, k) -> (P,)). ``E_eps(f)`` (Gauss–Hermite, ``Measured``),
    ``MC_eps(f, n_draws=4000)``; fixed draws ``eps_draws`` (20, n, k).
    Closed forms: ``elbo_of(m_q, log_std_q, W, mu, psi)``, ``grad_elbo``
    (P,) and its parts ``g_m``, ``g_log_std``
    (``estimators.elbo_analytic_and_grad``); ``elbo_enc(A, c, log_std, W,
    mu, psi)`` and ``grad_enc`` (``vae.elbo_and_grad``, keys A, c, log_std,
    W, mu, psi); ``grad`` (finite differences).

    A data set ``X`` (30, d) from a pPCA model: ``Sigma_hat``, ``xbar``,
    eigenvalues ``lam`` (decreasing) and eigenvectors ``U``; the linear
    VAE's optimum (``vae.optimum``): ``W_opt, mu_opt, sigma2_opt, A_opt,
    c_opt, log_std_opt``, ``S_opt`` (posterior covariance), ``elbo_X``,
    ``log_px_X`` (per datum of X), ``E_q_X``, ``log_q_X``, ``log_joint_X``,
    ``grad_opt`` (keys A, c, log_std, W, mu, log_sigma2); with sigma^2 fixed
    at ``sigma2_col`` between lam_1 and lam_2: ``collapsed`` (1.0 where
    lam_j <= sigma^2), ``W_col, A_col, log_std_col, elbo_col, log_px_col``,
    ``grad_col`` (keys A, c, log_std, W, mu). ELBO surgery for the encoder
    on X (``refvi.inference.aggregate``): ``expected_kl`` (exact),
    ``kl_agg`` (quadrature, ``Measured``), Monte Carlo ``mutual_info_mc``,
    ``kl_agg_mc`` (``Estimate``); functions of z ``log_enc_X`` (log q(z|x_i)),
    ``log_agg_X`` (log q(z), the mixture), ``log_prior_X``; expectations
    ``E_enc_X`` (under each q(z|x_i)) and ``E_agg`` (under q(z)); for
    Gaussian data N(``m_data``, ``C_data``) the closed forms
    ``expected_kl_g``, ``mutual_info_g``, ``kl_agg_g``
    (``aggregate.surgery_gaussian``).
    """
    k, d = int(k), int(d)
    if not 1 <= k < d:
        raise ValueError(f"k must be in 1 .. d - 1; got k = {k}, d = {d}")
    rng = np.random.default_rng(seed)
    model = lg.LinearGaussian(
        rng.normal(size=(d, k)), rng.normal(size=d), rng.uniform(0.3, 1.5, size=d)
    )
    encoder = LinearEncoder(
        rng.normal(scale=0.2, size=(k, d)),
        rng.normal(scale=0.5, size=k),
        log_std=rng.uniform(-0.2, 0.2, size=k),
    )
    x = rng.normal(size=(N_DATA, d)) * 1.5 + model.mu
    q = encode(encoder, x)
    q_post = encode(exact_posterior_encoder(model), x)
    L_q = np.stack([np.diag(np.exp(s)) for s in q.log_std])
    names = linear_gaussian_latent_names(seed, model, x, q.m, L_q, order=32)
    elbo, g = estimators.elbo_analytic_and_grad(model, x, q)
    elbo_enc, g_enc = vae.elbo_and_grad(encoder, model, x, estimator="analytic")
    E_eps, MC_eps = _eps_operators(N_DATA, k, seed)
    names.update(
        k=k,
        W=model.W,
        mu=model.mu,
        psi=model.psi,
        A=encoder.A,
        c=encoder.c,
        log_std=encoder.log_std,
        m_q=q.m,
        log_std_q=np.array(q.log_std),
        L_q=L_q,
        kl=lg.kl_to_posterior(model, x, q.m, L_q),
        elbo=elbo,
        elbo_of=lambda m_q, log_std_q, W, mu, psi: estimators.elbo_analytic_and_grad(
            lg.LinearGaussian(W, mu, psi), x, QParams(m_q, log_std_q)
        )[0],
        grad_elbo=_flat(g, ("m_q", "log_std_q", "W", "mu", "psi"), False),
        g_m=g["m_q"],
        g_log_std=g["log_std_q"],
        elbo_enc=lambda A, c, log_std, W, mu, psi: vae.elbo_and_grad(
            LinearEncoder(A, c, log_std=log_std),
            lg.LinearGaussian(W, mu, psi),
            x,
            estimator="analytic",
        )[0],
        grad_enc=_flat(g_enc, ("A", "c", "log_std", "W", "mu", "psi"), False),
        grad=_numerical_grad,
        E_eps=E_eps,
        MC_eps=MC_eps,
        eps_draws=rng.standard_normal((20, N_DATA, k)),
    )
    del elbo_enc
    names.update(_estimator_functions(model, x, q, q_post))
    # a data set from a pPCA model with k factors
    truth = lg.LinearGaussian.ppca(
        rng.normal(size=(d, k)) * np.linspace(2.0, 1.0, k), rng.normal(size=d), 0.3
    )
    X = rng.normal(size=(N_X, k)) @ truth.W.T + truth.mu
    X = X + rng.normal(size=(N_X, d)) * np.sqrt(truth.psi)
    names.update(_data_set_names(X, k))
    names.update(_surgery_names(encoder, X, k, d, seed))
    closed = dict(CLOSED)
    closed.update(CLOSED_AMORTIZED)
    return Instance("amortized", seed, CONTINUOUS, names, closed)


#: Gauss–Hermite order per coordinate of ``E_enc_X``, ``E_agg`` and
#: ``kl_agg`` (the integrands hold the log of a mixture of N_X Gaussians, not
#: a polynomial), and the most nodes per datum their refinement may reach
#: (orders 60, 90, 135 for k = 2: each node evaluates N_X densities at N_X
#: points).
ORDER_ENC = 60
MAX_NODES_ENC = 2 * 10**4


def _encoder_expectations(encoder, X):
    """``E_enc_X(f)``: E_{q(z|x_i)} f(z) for each point of X, (N_X,);
    ``E_agg(f)``: E_{q(z)} f(z) under the aggregate q(z) = (1/N) sum_i
    q(z|x_i), their mean. f is a function of z (N_X, m, k) -> (N_X, m).
    Gauss–Hermite from order ``ORDER_ENC`` in u, z_i = A x_i + c + sigma u
    (``namespace.GaussianRule``), refined under its error estimate up to
    ``MAX_NODES_ENC`` nodes: ``Measured`` values."""
    means = X @ encoder.A.T + encoder.c
    k = encoder.k
    L = np.broadcast_to(np.diag(np.exp(encoder.log_std)), (len(X), k, k))
    rule = GaussianRule(means, L, ORDER_ENC)

    def E_enc_X(f):
        return rule.measure(f, "E_enc_X", max_nodes=MAX_NODES_ENC)

    def E_agg(f):
        per_datum = rule.measure(f, "E_agg", max_nodes=MAX_NODES_ENC)
        return Measured(np.mean(per_datum.value), np.mean(per_datum.error))

    return E_enc_X, E_agg


def _surgery_names(encoder, X, k, d, seed):
    """ELBO surgery (``refvi.inference.aggregate``) for the encoder on the
    empirical data set X and on Gaussian data N(m_data, C_data)."""
    n_X = X.shape[0]
    quad = aggregate.kl_aggregate_empirical_quad(encoder, X, order=ORDER_ENC)
    kl_agg = refine(  # raised from ORDER_ENC only when its estimate is too large
        lambda order: aggregate.kl_aggregate_empirical_quad(encoder, X, order=order)[0],
        ORDER_ENC, k, MAX_NODES_ENC, first=(quad.value, quad.error),
    )  # fmt: skip
    eps = np.random.default_rng((seed, 3)).standard_normal((2000, n_X, k))
    mc = aggregate.surgery_empirical_mc(encoder, X, eps)
    expected_kl = mc.expected_kl
    m_data = X.mean(axis=0)
    C_data = np.cov(X.T, bias=True) + 0.1 * np.eye(d)
    sg = aggregate.surgery_gaussian(encoder, m_data, C_data)
    E_enc_X, E_agg = _encoder_expectations(encoder, X)
    return {
        "expected_kl": expected_kl,
        "kl_agg": kl_agg,
        "mutual_info_mc": Estimate(*mc.mutual_info),
        "kl_agg_mc": Estimate(*mc.kl_aggregate),
        "E_enc_X": E_enc_X,
        "E_agg": E_agg,
        "log_enc_X": Fn(
            lambda z: gaussian.log_prob(
                gaussian.Gaussian(
                    (X @ encoder.A.T + encoder.c)[:, None, :], log_std=encoder.log_std
                ),
                z,
            ),
            "log_enc_X",
        ),
        "log_agg_X": Fn(
            lambda z: aggregate.log_aggregate_empirical(
                encoder, X, z.reshape(-1, k)
            ).reshape(z.shape[:2]),
            "log_agg_X",
        ),
        "log_prior_X": Fn(
            lambda z: gaussian.log_prob(gaussian.standard_normal(k), z), "log_prior_X"
        ),
        "m_data": m_data,
        "C_data": C_data,
        "expected_kl_g": sg.expected_kl,
        "mutual_info_g": sg.mutual_info,
        "kl_agg_g": sg.kl_aggregate,
    }
