"""The accuracy suite: a stress corpus, refvi's values and gradients on it, and a
50-digit mpmath evaluation of each naive formula to compare them with.

Each *check* is one public function on one corpus case. It returns refvi's
outputs and the reference outputs as dicts of float arrays (a value and each
gradient); references for gradients are central differences of the naive
50-digit value with step 1e-20 (truncation ~1e-40, cancellation ~1e-30: exact
for float64 purposes). Errors are normwise relative (``mpref.rel_err``).

A check passes when every output is within ``TOL`` = 1e-12 of the reference,
or -- when the problem itself is ill-conditioned -- within ``COND_FACTOR``
times its condition number kappa (in units of eps), kappa measured by
perturbing every float input by eps relatively (``mpref.perturbation_condition``)
and re-evaluating the reference: the error any backward-stable algorithm may
make. ``benchmarks/accuracy_table.py`` runs every check and writes
docs/accuracy.md.

Corpus: condition numbers to 1e10 (factor diagonals 1 and 1e-5), offsets to
1e8 sigma, a tiny scale (sigma 1e-8 at mean (1, 1)), weights down to 1e-300
and logits of +-1e3, and the small sizes d = 1, k = 1, n = 1.
"""

import warnings
from typing import NamedTuple

import mpmath
import numpy as np
from mpref import DPS, EPS, perturbation_condition, rel_err

from refvi import categorical, gaussian, mixture_kl
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lge
from refvi.models import mixture as gm
from refvi.models import mixture_em as mem
from refvi.models import mixture_prior as mpr

TOL = 1e-12
COND_FACTOR = 16


# --------------------------------------------------------------------------
# Naive formulas on numpy object arrays of mpf.


def to_mp(a):
    """float array -> object array of mpf (exact)."""
    a = np.asarray(a, dtype=float)
    return np.array([mpmath.mpf(float(v)) for v in a.ravel()], dtype=object).reshape(
        a.shape
    )


def F(a):
    """object array of mpf -> float array."""
    a = np.asarray(a, dtype=object)
    return np.array([float(v) for v in a.ravel()]).reshape(a.shape)


def _m(A):
    return mpmath.matrix(A.tolist())


def inv(A):
    return np.array(mpmath.inverse(_m(A)).tolist(), dtype=object)


def logdet(A):
    return mpmath.log(mpmath.det(_m(A)))


def mlog(a):
    return np.vectorize(mpmath.log, otypes=[object])(a)


def mexp(a):
    return np.vectorize(mpmath.exp, otypes=[object])(a)


def lse(a, axis=-1):
    """logsumexp along ``axis`` of an object array (-inf entries allowed)."""
    a = np.moveaxis(np.asarray(a, dtype=object), axis, -1)
    out = np.empty(a.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        row = [v for v in a[idx] if v != -mpmath.inf]
        top = max(row)
        out[idx] = top + mpmath.log(mpmath.fsum(mpmath.exp(v - top) for v in row))
    return out


def log_normal(x, mean, Sigma):
    """log N(x_i; mean, Sigma) for rows of x (object arrays), (n,)."""
    d = mean.shape[0]
    Si = inv(Sigma)
    e = x - mean
    quad = np.einsum("ij,jk,ik->i", e, Si, e)
    return -(d * mpmath.log(2 * mpmath.pi) + logdet(Sigma) + quad) / 2


def kl_gauss(mp, Sp, mq, Sq):
    d = mp.shape[0]
    Sqi = inv(Sq)
    e = mq - mp
    return (np.trace(Sqi @ Sp) + e @ Sqi @ e - d + logdet(Sq) - logdet(Sp)) / 2


def log_softmax(z):
    return z - lse(z)[..., None]


# --------------------------------------------------------------------------
# Gradients of a naive value by 50-digit central differences.


def mp_value_and_grads(value_fn, params, dout, free=None):
    """value_fn(obj params) -> object array (n,) or scalar.

    Returns {"value": float array, name: d(sum dout * value)/d param} with only
    the ``free`` entries (mask per name, default all) differentiated.
    """
    free = free or {}
    with mpmath.workdps(DPS + 10):
        P = {k: to_mp(v) for k, v in params.items()}
        val = value_fn(P)
        out = {"value": F(val)}
        w = to_mp(dout) if np.ndim(val) else None
        h = mpmath.mpf(10) ** -20

        def total(Q):
            v = value_fn(Q)
            return mpmath.fsum(np.ravel(w * v)) if w is not None else v

        for name, arr in params.items():
            mask = free.get(name, np.ones(np.shape(arr), dtype=bool))
            g = np.zeros(np.shape(arr))
            for idx in zip(*np.nonzero(mask), strict=True):
                step = h * max(1, abs(P[name][idx]))
                Qp = dict(P)
                Qp[name] = P[name].copy()
                Qp[name][idx] += step
                Qm = dict(P)
                Qm[name] = P[name].copy()
                Qm[name][idx] -= step
                g[idx] = float((total(Qp) - total(Qm)) / (2 * step))
            out[name] = g
        return out


# --------------------------------------------------------------------------
# The corpus.


def _lower(d, diag, off=0.3):
    return np.tril(np.full((d, d), off), -1) * np.sqrt(np.outer(diag, diag)) + np.diag(
        diag
    )


def gaussian_cases():
    """(name, mean, L, x) for one Gaussian."""
    rng = np.random.default_rng(0)
    cases = [("d=1, n=1", np.array([0.3]), np.array([[0.7]]), np.array([[1.1]]))]
    L = _lower(2, np.array([1.0, 1e-5]))
    cases.append(("cond 1e10", np.array([0.5, -1.0]), L, rng.normal(size=(3, 2))))
    L = _lower(2, np.array([0.7, 1.1]))
    mean = np.array([1e8, -1e8])
    cases.append(("offset 1e8 sigma", mean, L, mean + rng.normal(size=(3, 2))))
    L = _lower(2, np.array([1e-8, 2e-8]))
    mean = np.array([1.0, 1.0])
    cases.append(
        ("sigma 1e-8 at (1, 1)", mean, L, mean + 1e-8 * rng.normal(size=(3, 2)))
    )
    return cases


def gaussian_pairs():
    """(name, (mean_p, L_p), (mean_q, L_q))."""
    out = [
        (
            "d=1",
            (np.array([0.2]), np.array([[0.5]])),
            (np.array([-0.1]), np.array([[2.0]])),
        )
    ]
    out.append(
        (
            "cond 1e10",
            (np.array([0.1, 0.2]), _lower(2, np.array([1.0, 1e-5]))),
            (np.array([0.3, -0.2]), _lower(2, np.array([1e-5, 1.0]), -0.2)),
        )
    )
    out.append(
        (
            "offset 1e8 sigma",
            (np.array([1e8, 1.0]), _lower(2, np.array([0.8, 1.2]))),
            (np.array([0.0, 0.0]), _lower(2, np.array([1.0, 0.9]))),
        )
    )
    out.append(
        (
            "near-equal, sigma 1e-8",
            (np.array([1.0, 1.0]), _lower(2, np.array([1e-8, 1e-8]))),
            (np.array([1.0 + 1e-9, 1.0]), _lower(2, np.array([1.0001e-8, 1e-8]))),
        )
    )
    return out


def logits_cases():
    return [
        ("k=1", np.array([[0.3]])),
        ("ordinary", np.array([[0.1, -0.5, 1.2], [2.0, 0.0, -1.0]])),
        ("+-1e3", np.array([[1e3, -1e3, 0.0], [-1e3, -999.0, -1e3]])),
        ("weight 1e-300", np.array([[0.0, np.log(1e-300), -5.0]])),
    ]


def scale_key(ctype):
    """The mixture's scale parameter: L (full, tied) or std (diag, spherical)."""
    return "L" if ctype in ("full", "tied") else "std"


def _mixture(weights, means, scale, ctype, from_logits=False):
    kw = {"covariance_type": ctype, scale_key(ctype): scale}
    if from_logits:
        return gm.GaussianMixture.from_logits(weights, means, **kw)
    return gm.GaussianMixture(weights, means, **kw)


def mixture_cases():
    """(name, model, x) over the four covariance types."""
    out = []
    rng = np.random.default_rng(1)
    for ctype in gm.COVARIANCE_TYPES:

        def factor(diags, ctype=ctype):
            diags = np.asarray(diags, dtype=float)  # (K, d) standard deviations
            if ctype == "full":
                return np.stack([_lower(diags.shape[1], s) for s in diags])
            if ctype == "tied":
                return _lower(diags.shape[1], diags[0])
            if ctype == "diag":
                return diags
            return diags[:, 0]

        out.append(
            (
                f"{ctype}: K=1, d=1, n=1",
                _mixture([1.0], [[0.5]], factor([[0.8]]), ctype),
                np.array([[1.6]]),
            )
        )
        sd = (
            [[1.0, 1e-5], [1e-5, 1.0]]
            if ctype in ("full", "diag")
            else [[1.0, 1.0]] * 2
        )
        if ctype == "tied":
            sd = [[1.0, 1e-5]] * 2
        out.append(
            (
                f"{ctype}: cond 1e10",
                _mixture([0.4, 0.6], [[0.0, 0.0], [1.0, 1e-5]], factor(sd), ctype),
                rng.normal(size=(2, 2)) * [1.0, 1e-5],
            )
        )
        mean = np.array([1e8, -1e8])
        out.append(
            (
                f"{ctype}: offset 1e8 sigma",
                _mixture(
                    [0.3, 0.7], [mean, mean + 2.0], factor([[0.7, 1.1]] * 2), ctype
                ),
                mean + rng.normal(size=(2, 2)),
            )
        )
        out.append(
            (
                f"{ctype}: weights 1e-300, logit -1e3",
                _mixture(
                    [0.0, np.log(1e-300), -1e3],
                    [[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]],
                    factor([[1.0, 0.9], [0.6, 1.2], [0.8, 0.8]]),
                    ctype,
                    from_logits=True,
                ),
                np.array([[3.0, 0.1], [0.0, 4.0]]),
            )
        )
    return out


def lg_cases():
    """(name, model, x)."""
    rng = np.random.default_rng(2)
    out = [
        (
            "d=1, k=1, n=1",
            lg.LinearGaussian([[0.8]], [0.1], [0.5]),
            np.array([[0.7]]),
        )
    ]
    W = rng.normal(size=(3, 2))
    out.append(
        (
            "psi 1e-10..1 (cond 1e10)",
            lg.LinearGaussian(W, rng.normal(size=3), [1e-10, 1.0, 0.5]),
            rng.normal(size=(3, 3)),
        )
    )
    mu = np.array([1e8, -1e8, 3e7])
    out.append(
        (
            "offset 1e8 sigma",
            lg.LinearGaussian(W, mu, [0.5, 1.0, 0.7]),
            mu + rng.normal(size=(3, 3)),
        )
    )
    return out


# --------------------------------------------------------------------------
# Checks: (function, case) -> (refvi outputs, reference(float params) -> outputs,
# float params, free masks).


class Check(NamedTuple):
    function: str
    case: str
    got: dict
    reference: object  # callable(params dict) -> dict of float arrays
    params: dict


def _tril_mask(L):
    return np.tril(np.ones(np.shape(L), dtype=bool))


def gaussian_checks():
    out = []
    for name, mean, L, x in gaussian_cases():
        dout = np.linspace(1.0, -0.5, x.shape[0])
        p = gaussian.Gaussian(mean, scale_tril=L)
        v, g = gaussian.log_prob_and_grad(p, x, dout)

        def ref(P, dout=dout):
            return mp_value_and_grads(
                lambda Q: log_normal(Q["x"], Q["mean"], Q["L"] @ Q["L"].T),
                P,
                dout,
                {"L": _tril_mask(P["L"])},
            )

        out.append(
            Check(
                "gaussian.log_prob_and_grad",
                name,
                {"value": v, "mean": g["mean"], "L": g["scale_tril"], "x": g["x"]},
                ref,
                {"mean": mean, "L": L, "x": x},
            )
        )
        v, g = gaussian.entropy_and_grad(p)

        def ref_h(P):
            d = P["L"].shape[0]
            return mp_value_and_grads(
                lambda Q: (
                    (d * (1 + mpmath.log(2 * mpmath.pi)) + logdet(Q["L"] @ Q["L"].T))
                    / 2
                ),
                P,
                None,
                {"L": _tril_mask(P["L"])},
            )

        out.append(
            Check(
                "gaussian.entropy_and_grad",
                name,
                {"value": v, "L": g["scale_tril"]},
                ref_h,
                {"L": L},
            )
        )
    for name, (m1, L1), (m2, L2) in gaussian_pairs():
        q, p = (
            gaussian.Gaussian(m1, scale_tril=L1),
            gaussian.Gaussian(m2, scale_tril=L2),
        )
        v, g = gaussian.kl_and_grad(q, p)

        def ref_kl(P):
            return mp_value_and_grads(
                lambda Q: kl_gauss(
                    Q["mean_q"],
                    Q["L_q"] @ Q["L_q"].T,
                    Q["mean_p"],
                    Q["L_p"] @ Q["L_p"].T,
                ),
                P,
                None,
                {"L_q": _tril_mask(P["L_q"]), "L_p": _tril_mask(P["L_p"])},
            )

        params = {"mean_q": m1, "L_q": L1, "mean_p": m2, "L_p": L2}
        got = {"value": v, "mean_q": g["mean_q"], "L_q": g["scale_tril_q"]}
        got.update(mean_p=g["mean_p"], L_p=g["scale_tril_p"])
        out.append(Check("gaussian.kl_and_grad", name, got, ref_kl, params))
        res = mixture_kl.kl_quadrature(q, p)
        out.append(
            Check(
                "mixture_kl.kl_quadrature",
                name,
                {"value": res.value},
                lambda P: {"value": ref_kl(P)["value"]},
                params,
            )
        )
    return out


def _diag_cov(log_std):
    """diag(exp(2 s)) as an object matrix."""
    return np.diag(mexp(2 * log_std))


def gaussian_diag_checks():
    """The diagonal (log_std) forms, reparameterize and sample, on the corpus's
    means and the diagonals of its factors (log_std = log diag L)."""
    out = []
    for name, mean, L, x in gaussian_cases():
        dout = np.linspace(1.0, -0.5, x.shape[0])
        s = np.log(np.diag(L))
        p = gaussian.Gaussian(mean, log_std=s)
        _with_value_only(
            out,
            "gaussian.log_prob",
            name,
            gaussian.log_prob_and_grad(p, x, dout),
            gaussian.log_prob(p, x),
            lambda Q: log_normal(Q["x"], Q["mean"], _diag_cov(Q["log_std"])),
            {"mean": mean, "log_std": s, "x": x},
            dout,
            tag=" [diag]",
        )
        _with_value_only(
            out,
            "gaussian.entropy",
            name,
            gaussian.entropy_and_grad(p),
            gaussian.entropy(p),
            lambda Q: (
                (
                    (len(Q["log_std"]) * (1 + mpmath.log(2 * mpmath.pi)))
                    + 2 * np.sum(Q["log_std"])
                )
                / 2
            ),
            {"mean": mean, "log_std": s},
            None,
            tag=" [diag]",
        )
        eps = np.linspace(-2.0, 2.5, x.size).reshape(x.shape)
        dout_x = np.linspace(0.5, -1.0, x.size).reshape(x.shape)
        for form, dist, key, params, value_fn in (
            (
                "full",
                gaussian.Gaussian(mean, scale_tril=L),
                "scale_tril",
                {"mean": mean, "L": L, "eps": eps},
                lambda Q: Q["mean"] + Q["eps"] @ Q["L"].T,
            ),
            (
                "diag",
                p,
                "log_std",
                {"mean": mean, "log_std": s, "eps": eps},
                lambda Q: Q["mean"] + Q["eps"] * mexp(Q["log_std"]),
            ),
        ):
            v, g = gaussian.reparameterize_and_grad(dist, eps, dout_x)
            got = {"value": v, "mean": g["mean"], "eps": g["eps"]}
            got["L" if key == "scale_tril" else key] = g[key]
            free = {"L": _tril_mask(L)} if form == "full" else None
            _with_value_only(
                out,
                "gaussian.reparameterize",
                name,
                (got.pop("value"), got),
                gaussian.reparameterize(dist, eps),
                value_fn,
                params,
                dout_x,
                free,
                tag=f" [{form}]",
            )
            # sample = reparameterize of the generator's standard normals
            noise = np.random.default_rng(5).standard_normal((4, len(mean)))
            out.append(
                Check(
                    f"gaussian.sample [{form}]",
                    name,
                    {"value": gaussian.sample(dist, np.random.default_rng(5), 4)},
                    lambda P, f=value_fn: mp_value(f, P),
                    {**params, "eps": noise},
                )
            )
    for name, (m1, L1), (m2, L2) in gaussian_pairs():
        s1, s2 = np.log(np.diag(L1)), np.log(np.diag(L2))
        for form, q, p, params, cov_q, cov_p, keys in (
            (
                "diag||diag",
                gaussian.Gaussian(m1, log_std=s1),
                gaussian.Gaussian(m2, log_std=s2),
                {"mean_q": m1, "log_std_q": s1, "mean_p": m2, "log_std_p": s2},
                lambda Q: _diag_cov(Q["log_std_q"]),
                lambda Q: _diag_cov(Q["log_std_p"]),
                ("log_std_q", "log_std_p"),
            ),
            (
                "diag||full",
                gaussian.Gaussian(m1, log_std=s1),
                gaussian.Gaussian(m2, scale_tril=L2),
                {"mean_q": m1, "log_std_q": s1, "mean_p": m2, "L_p": L2},
                lambda Q: _diag_cov(Q["log_std_q"]),
                lambda Q: Q["L_p"] @ Q["L_p"].T,
                ("log_std_q", "scale_tril_p"),
            ),
            (
                "full||diag",
                gaussian.Gaussian(m1, scale_tril=L1),
                gaussian.Gaussian(m2, log_std=s2),
                {"mean_q": m1, "L_q": L1, "mean_p": m2, "log_std_p": s2},
                lambda Q: Q["L_q"] @ Q["L_q"].T,
                lambda Q: _diag_cov(Q["log_std_p"]),
                ("scale_tril_q", "log_std_p"),
            ),
        ):
            v, g = gaussian.kl_and_grad(q, p)
            got = {"value": v, "mean_q": g["mean_q"], "mean_p": g["mean_p"]}
            for key in keys:
                got[key.replace("scale_tril", "L")] = g[key]
            free = {k: _tril_mask(params[k]) for k in ("L_q", "L_p") if k in params}

            def naive(Q, cov_q=cov_q, cov_p=cov_p):
                return kl_gauss(Q["mean_q"], cov_q(Q), Q["mean_p"], cov_p(Q))

            _with_value_only(
                out,
                "gaussian.kl",
                name,
                (got.pop("value"), got),
                gaussian.kl(q, p),
                naive,
                params,
                None,
                free,
                tag=f" [{form}]",
            )
    return out


def categorical_checks():
    out = []
    for name, z in logits_cases():
        dout = np.linspace(1.0, -0.5, z.shape[0])
        out.append(
            Check(
                "categorical.log_softmax",
                name,
                {"value": categorical.log_softmax(z)},
                lambda P: mp_value(lambda Q: log_softmax(Q["logits"]), P),
                {"logits": z},
            )
        )
        k = np.arange(z.shape[0]) % z.shape[1]  # one outcome per row
        _with_value_only(
            out,
            "categorical.log_prob",
            name,
            categorical.log_prob_and_grad(z, k, dout),
            categorical.log_prob(z, k),
            lambda Q, k=k: log_softmax(Q["logits"])[np.arange(len(k)), k],
            {"logits": z},
            dout,
        )
        v, g = categorical.entropy_and_grad(z, dout)

        def ent(Q):
            ls = log_softmax(Q["logits"])
            return -np.sum(mexp(ls) * ls, axis=-1)

        out.append(
            Check(
                "categorical.entropy_and_grad",
                name,
                {"value": v, "logits": g["logits"]},
                lambda P, dout=dout: mp_value_and_grads(ent, P, dout),
                {"logits": z},
            )
        )
        zq = z[::-1].copy() if z.shape[0] > 1 else z - np.arange(z.shape[1])
        v, g = categorical.kl_and_grad(z, zq, dout)

        def klc(Q):
            # KL(q || p), the expectation under the first argument q
            lq, lp = log_softmax(Q["logits_q"]), log_softmax(Q["logits_p"])
            return np.sum(mexp(lq) * (lq - lp), axis=-1)

        out.append(
            Check(
                "categorical.kl_and_grad",
                name,
                {"value": v, **g},
                lambda P, dout=dout: mp_value_and_grads(klc, P, dout),
                {"logits_q": z, "logits_p": zq},
            )
        )
    return out


def mp_value(value_fn, params):
    """{"value": value_fn(params as 50-digit object arrays)} as floats."""
    with mpmath.workdps(DPS):
        return {"value": F(value_fn({k: to_mp(v) for k, v in params.items()}))}


def _mixture_naive(model):
    """(log pi, means, Sigmas) as functions of an object-params dict Q."""
    ctype, d, K = model.covariance_type, model.d, model.n_components

    def Sig(Q):
        L = Q[scale_key(ctype)]
        if ctype == "full":
            return [L[k] @ L[k].T for k in range(K)]
        if ctype == "tied":
            return [L @ L.T] * K
        if ctype == "diag":
            return [np.diag(L[k] ** 2) for k in range(K)]
        return [np.diag([L[k] ** 2] * d) for k in range(K)]

    def log_joint(Q):
        lw = log_softmax(Q["logits"])
        return np.stack(
            [
                lw[k] + log_normal(Q["x"], Q["means"][k], S)
                for k, S in enumerate(Sig(Q))
            ],
            axis=1,
        )

    return log_joint


def mixture_checks():
    out = []
    for name, model, x in mixture_cases():
        n, K = x.shape[0], model.n_components
        dout = np.linspace(1.0, -0.5, n)
        sk = scale_key(model.covariance_type)
        free = {"L": _tril_mask(model.L)} if sk == "L" else {}
        params = {
            "logits": np.array(model.log_weights),
            "means": np.array(model.means),
            sk: np.array(getattr(model, sk)),
            "x": x,
        }
        log_joint = _mixture_naive(model)
        v, g = gm.log_marginal_and_grad(model, x, dout)

        def ref_lm(P, dout=dout, log_joint=log_joint, free=free, x=x):
            P = {k: v for k, v in P.items() if k != "x"}
            return mp_value_and_grads(
                lambda Q: lse(log_joint({**Q, "x": to_mp(x)}), 1), P, dout, free
            )

        out.append(
            Check(
                "mixture.log_marginal_and_grad",
                name,
                {"value": v, **g},
                lambda P, f=ref_lm: f(P),
                {k: params[k] for k in ("logits", "means", sk)},
            )
        )
        out.append(
            Check(
                "mixture.log_responsibilities",
                name,
                {"value": gm.log_responsibilities(model, x)},
                lambda P, log_joint=log_joint: mp_value(
                    lambda Q: log_joint(Q) - lse(log_joint(Q), 1)[:, None], P
                ),
                params,
            )
        )
        value_only = [
            ("mixture.log_joint", gm.log_joint, lambda Q, lj: lj),
            (
                "mixture.log_lik",
                gm.log_lik,
                lambda Q, lj: lj - log_softmax(Q["logits"])[None, :],
            ),
            ("mixture.log_marginal", gm.log_marginal, lambda Q, lj: lse(lj, 1)),
            (
                "mixture.responsibilities",
                gm.responsibilities,
                lambda Q, lj: mexp(lj - lse(lj, 1)[:, None]),
            ),
        ]
        for function, fn, naive in value_only:
            out.append(
                Check(
                    function,
                    name,
                    {"value": fn(model, x)},
                    lambda P, naive=naive, log_joint=log_joint: mp_value(
                        lambda Q: naive(Q, log_joint(Q)), P
                    ),
                    params,
                )
            )
        q_logits = np.tile(np.linspace(0.5, -0.5, K), (n, 1))
        q_params = {k: params[k] for k in ("logits", "means", sk)}
        q_params["q_logits"] = q_logits
        # q-objectives: naive value from log q (n, K) and log p(x, z) (n, K)
        objectives = [
            (
                "mixture.elbo_and_grad",
                gm.elbo_and_grad,
                lambda lq, lj: np.sum(mexp(lq) * (lj - lq), axis=1),
            )
        ]
        if np.all(np.isfinite(model.log_weights)):
            objectives.append(
                (
                    "mixture.kl_to_posterior_and_grad",
                    gm.kl_to_posterior_and_grad,
                    lambda lq, lj: np.sum(
                        mexp(lq) * (lq - lj + lse(lj, 1)[:, None]), axis=1
                    ),
                )
            )
        for function, fn, naive in objectives:
            v, g = fn(model, x, q_logits, dout)
            value_fn = gm.elbo if fn is gm.elbo_and_grad else gm.kl_to_posterior
            out.append(
                Check(
                    function.replace("_and_grad", ""),
                    name,
                    {"value": value_fn(model, x, q_logits)},
                    lambda P, naive=naive, log_joint=log_joint: mp_value(
                        lambda Q: naive(log_softmax(Q["q_logits"]), log_joint(Q)), P
                    ),
                    {**params, "q_logits": q_logits},
                )
            )

            def ref_q(P, dout=dout, log_joint=log_joint, free=free, x=x, naive=naive):
                def f(Q):
                    lj = log_joint({**Q, "x": to_mp(x)})
                    return naive(log_softmax(Q["q_logits"]), lj)

                return mp_value_and_grads(f, P, dout, free)

            out.append(Check(function, name, {"value": v, **g}, ref_q, q_params))
    return out


def mixture_em_checks():
    """m_step (its parameters) and the auxiliary function with its gradients,
    over the mixture corpus with r the model's own responsibilities."""
    out = []
    reg = 1e-9  # small: the scatter, not the floor, makes the covariances
    for name, model, x in mixture_cases():
        ctype, (n, d), K = model.covariance_type, x.shape, model.n_components
        r = gm.responsibilities(model, x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mem.RegCovarWarning)
            new = mem.m_step(x, r, ctype, reg_covar=reg, previous=model)
        sk = scale_key(ctype)

        def m_step_naive(P, ctype=ctype, n=n, d=d, K=K, prev=model):
            with mpmath.workdps(DPS):
                Q = {key: to_mp(v) for key, v in P.items()}
                xq, rq = Q["x"], Q["r"]
                N = rq.sum(axis=0)
                empty = [float(N[k]) <= n * EPS for k in range(K)]
                mu = [
                    to_mp(prev.means[k]) if empty[k] else (rq[:, k] @ xq) / N[k]
                    for k in range(K)
                ]
                scat = [
                    sum(
                        (rq[i, k] * np.outer(xq[i] - mu[k], xq[i] - mu[k]))
                        for i in range(n)
                    )
                    for k in range(K)
                ]
                eye = np.eye(d, dtype=object) * Q["reg"]
                if ctype == "full":
                    cov = [
                        to_mp(prev.covariances()[k])
                        if empty[k]
                        else scat[k] / N[k] + eye
                        for k in range(K)
                    ]
                elif ctype == "tied":
                    cov = sum(scat) / n + eye
                elif ctype == "diag":
                    cov = [
                        to_mp(prev.covariances()[k])
                        if empty[k]
                        else np.diag(scat[k] / N[k] + eye)
                        for k in range(K)
                    ]
                else:
                    cov = [
                        to_mp(prev.covariances()[k])
                        if empty[k]
                        else np.sum(np.diag(scat[k] / N[k] + eye)) / d
                        for k in range(K)
                    ]
                return {
                    "weights": F(N / n),
                    "means": F(np.array(mu)),
                    "covariances": F(np.array(cov)),
                }

        out.append(
            Check(
                "mixture_em.m_step",
                name,
                {
                    "weights": new.weights,
                    "means": new.means,
                    "covariances": new.covariances(),
                },
                m_step_naive,
                {"x": x, "r": r, "reg": np.array(reg)},
            )
        )
        log_joint = _mixture_naive(model)
        free = {"L": _tril_mask(model.L)} if sk == "L" else {}
        params = {
            "logits": np.array(model.log_weights),
            "means": np.array(model.means),
            sk: np.array(getattr(model, sk)),
        }

        def aux_naive(Q, x=x, r=r, log_joint=log_joint, ctype=ctype, sk=sk, d=d):
            lj = log_joint({**Q, "x": to_mp(x)})
            rq = to_mp(r)
            val = mpmath.fsum(
                (rq * lj)[rq != 0].ravel()  # 0 * (-inf) = 0 for emptied components
            )
            N = rq.sum(axis=0)
            S = Q[sk]
            if ctype == "full":
                tr = [np.trace(inv(S[k] @ S[k].T)) for k in range(len(N))]
            elif ctype == "tied":
                tr = [np.trace(inv(S @ S.T))] * len(N)
            elif ctype == "diag":
                tr = [np.sum(1 / S[k] ** 2) for k in range(len(N))]
            else:
                tr = [d / S[k] ** 2 for k in range(len(N))]
            return val - reg / 2 * mpmath.fsum(N[k] * tr[k] for k in range(len(N)))

        if np.all(np.isfinite(model.log_weights)):
            v, g = mem.auxiliary_and_grad(model, x, r, reg_covar=reg)
            out.append(
                Check(
                    "mixture_em.auxiliary_and_grad",
                    name,
                    {"value": v, **g},
                    lambda P, f=aux_naive, free=free: mp_value_and_grads(
                        f, P, None, free
                    ),
                    params,
                )
            )
    return out


def _mk_naive(Q, n_iter):
    """KL approximations and bounds of mixtures q, p from their 50-digit
    parameters: log weights ``lw_q``/``lw_p``, means, dense covariances."""
    A, B = len(Q["lw_q"]), len(Q["lw_p"])
    d = Q["m_q"].shape[1]
    l2p = mpmath.log(2 * mpmath.pi)

    def D(ma, Sa, mb, Sb):
        return kl_gauss(ma, Sa, mb, Sb)

    def lov(ma, Sa, mb, Sb):  # log N(ma; mb, Sa + Sb)
        return log_normal(ma[None, :], mb, Sa + Sb)[0]

    q = [(Q["m_q"][a], Q["S_q"][a]) for a in range(A)]
    p = [(Q["m_p"][b], Q["S_p"][b]) for b in range(B)]
    Dff = [[D(*q[a], *q[c]) for c in range(A)] for a in range(A)]
    Dfg = [[D(*q[a], *p[b]) for b in range(B)] for a in range(A)]
    H = [(d * (1 + l2p) + logdet(q[a][1])) / 2 for a in range(A)]
    wq = [mpmath.exp(v) for v in Q["lw_q"]]

    def lsw(lw, terms):
        return lse(np.array([lw[c] + terms[c] for c in range(len(lw))], dtype=object))

    var_ff = [lsw(Q["lw_q"], [-v for v in Dff[a]]) for a in range(A)]
    var_fg = [lsw(Q["lw_p"], [-v for v in Dfg[a]]) for a in range(A)]
    jen_ff = [lsw(Q["lw_q"], [lov(*q[a], *q[c]) for c in range(A)]) for a in range(A)]
    jen_fg = [lsw(Q["lw_p"], [lov(*q[a], *p[b]) for b in range(B)]) for a in range(A)]
    out = {
        "variational": mpmath.fsum(wq[a] * (var_ff[a] - var_fg[a]) for a in range(A)),
        "lower": mpmath.fsum(wq[a] * (var_ff[a] - H[a] - jen_fg[a]) for a in range(A)),
        "upper": mpmath.fsum(wq[a] * (jen_ff[a] + H[a] - var_fg[a]) for a in range(A)),
    }
    # (MK.13)-(MK.14): phi = psi = pi w^T, then n_iter alternating updates
    wp = [mpmath.exp(v) for v in Q["lw_p"]]
    phi = [[wq[a] * wp[b] for b in range(B)] for a in range(A)]
    psi = phi
    for _ in range(n_iter):
        col = [mpmath.fsum(phi[a][b] for a in range(A)) for b in range(B)]
        psi = [[wp[b] * phi[a][b] / col[b] for b in range(B)] for a in range(A)]
        t = [[psi[a][b] * mpmath.exp(-Dfg[a][b]) for b in range(B)] for a in range(A)]
        phi = [
            [wq[a] * t[a][b] / mpmath.fsum(t[a]) for b in range(B)] for a in range(A)
        ]
    out["upper_bound"] = mpmath.fsum(
        phi[a][b] * (mpmath.log(phi[a][b] / psi[a][b]) + Dfg[a][b])
        for a in range(A)
        for b in range(B)
        if phi[a][b] != 0
    )
    return out


def mixture_kl_checks():
    """kl_variational, kl_bounds and kl_variational_upper_bound between the
    corpus mixtures (full and diag) and a moved, rescaled, reweighted p."""
    out = []
    n_iter = 5
    for name, q, _ in mixture_cases():
        if q.covariance_type not in ("full", "diag"):
            continue
        K = q.n_components
        scale = 1.3 * (q.L if q.L is not None else q.std)
        lw_p = np.log(np.linspace(1.0, 2.0, K) / np.linspace(1.0, 2.0, K).sum())
        p = _mixture(np.exp(lw_p), q.means + 0.5, scale, q.covariance_type)
        params = {
            "lw_q": np.array(q.log_weights),
            "m_q": np.array(q.means),
            "S_q": q.dense_covariances(),
            "lw_p": np.array(p.log_weights),
            "m_p": np.array(p.means),
            "S_p": p.dense_covariances(),
        }

        def ref(P, keys, n_iter=n_iter):
            with mpmath.workdps(DPS):
                got = _mk_naive({k: to_mp(v) for k, v in P.items()}, n_iter)
                return {k: F(np.array(got[src])) for k, src in keys.items()}

        bounds = mixture_kl.kl_bounds(q, p)
        for function, got, keys in (
            (
                "mixture_kl.kl_variational",
                {"value": mixture_kl.kl_variational(q, p)},
                {"value": "variational"},
            ),
            (
                "mixture_kl.kl_bounds",
                {"lower": bounds.lower, "upper": bounds.upper},
                {"lower": "lower", "upper": "upper"},
            ),
            (
                "mixture_kl.kl_variational_upper_bound",
                {"value": mixture_kl.kl_variational_upper_bound(q, p, n_iter)},
                {"value": "upper_bound"},
            ),
        ):
            tag = f"{q.covariance_type}: {name.split(': ', 1)[1]}"
            out.append(
                Check(function, tag, got, lambda P, keys=keys: ref(P, keys), params)
            )
    return out


def _with_value_only(
    out, function, case, value_and_grads, value, naive, params, dout, free=None, tag=""
):
    """Append the checks of ``function_and_grad`` and of the value-only ``function``
    (``tag`` after the names, e.g. " [diag]")."""
    v, g = value_and_grads
    out.append(
        Check(
            function + "_and_grad" + tag,
            case,
            {"value": v, **g},
            lambda P, naive=naive, dout=dout, free=free: mp_value_and_grads(
                naive, P, dout, free
            ),
            params,
        )
    )
    out.append(
        Check(
            function + tag, case, {"value": value}, lambda P: mp_value(naive, P), params
        )
    )


def lg_checks():
    out = []
    for name, model, x in lg_cases():
        n, k = x.shape[0], model.W.shape[1]
        dout = np.linspace(1.0, -0.5, n)

        def C(Q):
            return Q["W"] @ Q["W"].T + np.diag(Q["psi"])

        theta = {"W": np.array(model.W), "mu": np.array(model.mu)}
        theta.update(psi=np.array(model.psi), x=x)
        _with_value_only(
            out,
            "linear_gaussian.log_marginal",
            name,
            lg.log_marginal_and_grad(model, x, dout),
            lg.log_marginal(model, x),
            lambda Q: log_normal(Q["x"], Q["mu"], C(Q)),
            theta,
            dout,
        )
        m_q = np.linspace(-0.3, 0.4, n * k).reshape(n, k)
        L_q = _lower(k, np.linspace(0.5, 0.8, k))

        def elbo_naive(Q):
            # E_q log N(x; W z + mu, Psi) + E_q log N(z; 0, I) + H(q), naive
            Sq = Q["L_q"] @ Q["L_q"].T
            W, psi = Q["W"], Q["psi"]
            r = Q["x"] - Q["mu"] - Q["m_q"] @ W.T
            dd, kk = W.shape
            l2p = mpmath.log(2 * mpmath.pi)
            lik = (
                -(
                    dd * l2p
                    + np.sum(mlog(psi))
                    + np.sum(r * r / psi, axis=1)
                    + np.trace((W.T @ np.diag(1 / psi) @ W) @ Sq)
                )
                / 2
            )
            prior = -(kk * l2p + np.sum(Q["m_q"] ** 2, axis=1) + np.trace(Sq)) / 2
            H = (kk * (1 + l2p) + logdet(Sq)) / 2
            return lik + prior + H

        def ecll_naive(Q, k=k, elbo_naive=elbo_naive):
            # E_q log p(x, z) = ELBO - H(q), naive
            Sq = Q["L_q"] @ Q["L_q"].T
            return (
                elbo_naive(Q) - (k * (1 + mpmath.log(2 * mpmath.pi)) + logdet(Sq)) / 2
            )

        for function, naive in (
            ("elbo", elbo_naive),
            ("expected_complete_loglik", ecll_naive),
        ):
            _with_value_only(
                out,
                "linear_gaussian." + function,
                name,
                getattr(lg, function + "_and_grad")(model, x, m_q, L_q, dout=dout),
                getattr(lg, function)(model, x, m_q, L_q),
                naive,
                {"m_q": m_q, "L_q": L_q, **theta},
                dout,
                {"L_q": _tril_mask(L_q)},
            )
        log_std_q = np.log(np.linspace(0.4, 1.3, n * k)).reshape(n, k)

        def ecll_diag(Q, k=k, n=n, elbo_naive=elbo_naive):
            # q_i = N(m_i, diag(exp(2 s_i))): the naive E_q log p(x_i, z) per row
            out = []
            for i in range(n):
                Qi = dict(Q, x=Q["x"][i : i + 1], m_q=Q["m_q"][i : i + 1])
                Qi["L_q"] = np.diag(mexp(Q["log_std_q"][i]))
                Sq = Qi["L_q"] @ Qi["L_q"].T
                H = (k * (1 + mpmath.log(2 * mpmath.pi)) + logdet(Sq)) / 2
                out.append(elbo_naive(Qi)[0] - H)
            return np.array(out, dtype=object)

        _with_value_only(
            out,
            "linear_gaussian.expected_complete_loglik",
            name,
            lg.expected_complete_loglik_and_grad(
                model, x, m_q, log_std_q=log_std_q, dout=dout
            ),
            lg.expected_complete_loglik(model, x, m_q, log_std_q=log_std_q),
            ecll_diag,
            {"m_q": m_q, "log_std_q": log_std_q, **theta},
            dout,
            tag=" [diag q]",
        )
        post = lg.posterior(model, x)

        def post_naive(Q, k=k):
            Pinv = np.diag(1 / Q["psi"])
            S = inv(np.eye(k, dtype=object) + Q["W"].T @ Pinv @ Q["W"])
            m = (Q["x"] - Q["mu"]) @ (S @ Q["W"].T @ Pinv).T
            L_S = np.array(mpmath.cholesky(_m(S)).tolist(), dtype=object)
            return {"m": F(m), "S": F(S), "L_S": F(L_S)}

        def post_ref(P, post_naive=post_naive):
            with mpmath.workdps(DPS):
                return post_naive({key: to_mp(v) for key, v in P.items()})

        out.append(
            Check(
                "linear_gaussian.posterior",
                name,
                {"m": post.m, "S": post.S, "L_S": post.L_S},
                post_ref,
                theta,
            )
        )
        kl = lg.kl_to_posterior(model, x, m_q, L_q)

        def kl_naive(P):
            def f(Q):
                return log_normal(Q["x"], Q["mu"], C(Q)) - elbo_naive(Q)

            return mp_value(f, P)

        out.append(
            Check(
                "linear_gaussian.kl_to_posterior",
                name,
                {"value": kl},
                kl_naive,
                {"m_q": m_q, "L_q": L_q, **theta},
            )
        )
        if n >= 1:
            stats = lge.sufficient_stats(x)
            total = lge.log_marginal_total(model, stats)

            def ref_total(P, n=n, C=C):
                def f(Q):
                    Cq = C(Q)
                    delta = Q["xbar"] - Q["mu"]
                    Ci = inv(Cq)
                    dd = Cq.shape[0]
                    return (
                        -mpmath.mpf(n)
                        / 2
                        * (
                            dd * mpmath.log(2 * mpmath.pi)
                            + logdet(Cq)
                            + np.trace(Ci @ Q["Sigma_hat"])
                            + delta @ Ci @ delta
                        )
                    )

                return mp_value(f, P)

            est = lge.expected_stats(model, stats)

            def ref_estats(P, k=k):
                with mpmath.workdps(DPS):
                    Q = {key: to_mp(v) for key, v in P.items()}
                    Pinv = np.diag(1 / Q["psi"])
                    S = inv(np.eye(k, dtype=object) + Q["W"].T @ Pinv @ Q["W"])
                    A = S @ Q["W"].T @ Pinv
                    C_xm = Q["Sigma_hat"] @ A.T
                    L_S = np.array(mpmath.cholesky(_m(S)).tolist(), dtype=object)
                    return {
                        "mbar": F(A @ (Q["xbar"] - Q["mu"])),
                        "C_xm": F(C_xm),
                        "C_mm": F(A @ C_xm),
                        "S": F(S),
                        "L_S": F(L_S),
                    }

            out.append(
                Check(
                    "linear_gaussian_em.expected_stats",
                    name,
                    {a: getattr(est, a) for a in ("mbar", "C_xm", "C_mm", "S", "L_S")},
                    ref_estats,
                    {
                        "W": np.array(model.W),
                        "mu": np.array(model.mu),
                        "psi": np.array(model.psi),
                        "xbar": stats.xbar,
                        "Sigma_hat": stats.Sigma_hat,
                    },
                )
            )
            out.append(
                Check(
                    "linear_gaussian_em.log_marginal_total",
                    name,
                    {"value": total},
                    ref_total,
                    {
                        "W": np.array(model.W),
                        "mu": np.array(model.mu),
                        "psi": np.array(model.psi),
                        "xbar": stats.xbar,
                        "Sigma_hat": stats.Sigma_hat,
                    },
                )
            )
    return out


def mixture_prior_checks():
    out = []
    rng = np.random.default_rng(3)
    W = rng.normal(size=(3, 2))
    a = np.array([[0.0, 0.0], [2.0, -1.0]])
    L_B = np.stack([_lower(2, np.array([1.0, 0.5])), _lower(2, np.array([0.3, 1e-4]))])
    for name, psi, mu in [
        ("ordinary", np.array([0.5, 1.0, 0.7]), np.zeros(3)),
        ("psi 1e-10, offset 1e8", np.array([1e-10, 1.0, 0.7]), np.array([1e8, 0, 0])),
    ]:
        model = mpr.MixturePrior([0.3, 0.7], a, L_B, W, mu, psi)
        x = mu + rng.normal(size=(2, 3))

        def ref(P):
            def f(Q):
                comps = []
                for j in range(2):
                    Cj = Q["W"] @ Q["L_B"][j] @ Q["L_B"][j].T @ Q["W"].T + np.diag(
                        Q["psi"]
                    )
                    comps.append(
                        mpmath.log(Q["w"][j])
                        + log_normal(Q["x"], Q["W"] @ Q["a"][j] + Q["mu"], Cj)
                    )
                return lse(np.stack(comps, axis=1), 1)

            return mp_value(f, P)

        post = mpr.posterior(model, x)

        def post_ref(P):
            with mpmath.workdps(DPS):
                Q = {key: to_mp(v) for key, v in P.items()}
                W, Pinv = Q["W"], np.diag(1 / Q["psi"])
                lj, ms, Ls = [], [], []
                for j in range(2):
                    B = Q["L_B"][j] @ Q["L_B"][j].T
                    Cj = W @ B @ W.T + np.diag(Q["psi"])
                    lj.append(
                        mpmath.log(Q["w"][j])
                        + log_normal(Q["x"], W @ Q["a"][j] + Q["mu"], Cj)
                    )
                    Bi = inv(B)
                    S = inv(Bi + W.T @ Pinv @ W)
                    ms.append(
                        (Bi @ Q["a"][j] + (Q["x"] - Q["mu"]) @ (W.T @ Pinv).T) @ S.T
                    )
                    Ls.append(np.array(mpmath.cholesky(_m(S)).tolist(), dtype=object))
                lj = np.stack(lj, axis=1)
                return {
                    "log_weights": F(lj - lse(lj, 1)[:, None]),
                    "m": F(np.stack(ms, axis=1)),
                    "L_S": F(np.array(Ls)),
                }

        out.append(
            Check(
                "mixture_prior.posterior",
                name,
                {"log_weights": post.log_weights, "m": post.m, "L_S": post.L_S},
                post_ref,
                {
                    "w": np.array([0.3, 0.7]),
                    "a": a,
                    "L_B": L_B,
                    "W": W,
                    "mu": mu,
                    "psi": psi,
                    "x": x,
                },
            )
        )
        out.append(
            Check(
                "mixture_prior.log_marginal",
                name,
                {"value": mpr.log_marginal(model, x)},
                ref,
                {
                    "w": np.array([0.3, 0.7]),
                    "a": a,
                    "L_B": L_B,
                    "W": W,
                    "mu": mu,
                    "psi": psi,
                    "x": x,
                },
            )
        )
    return out


ALL = {
    "gaussian": gaussian_checks,
    "gaussian_diag": gaussian_diag_checks,
    "categorical": categorical_checks,
    "mixture": mixture_checks,
    "mixture_em": mixture_em_checks,
    "mixture_kl": mixture_kl_checks,
    "linear_gaussian": lg_checks,
    "mixture_prior": mixture_prior_checks,
}


class Result(NamedTuple):
    function: str
    case: str
    output: str
    err: float  # normwise relative error
    kappa: float  # condition number in units of eps (nan if not measured)
    ok: bool


def measure(check, rng=None, always_kappa=False):
    """Compare one check with its reference; kappa measured when needed."""
    want = check.reference(check.params)
    errs = {name: rel_err(check.got[name], want[name]) for name in check.got}
    kappa = {name: np.nan for name in errs}
    if always_kappa or any(e > TOL for e in errs.values()):
        kappa = _kappa(check, rng)
    out = []
    for name, e in errs.items():
        kap = kappa.get(name, np.nan)
        ok = e <= TOL or (np.isfinite(kap) and e <= COND_FACTOR * max(kap, 1.0) * EPS)
        out.append(Result(check.function, check.case, name, e, kap, bool(ok)))
    return out


def _kappa(check, rng):
    names = list(check.params)

    def f(*arrays):
        return check.reference(dict(zip(names, arrays, strict=True)))

    return perturbation_condition(
        f, [np.array(check.params[k]) for k in names], rng or np.random.default_rng(0)
    )
