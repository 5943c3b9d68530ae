"""The catalogue of reference cases, generated deterministically from seeds.

Each entry draws its inputs from ``numpy.random.default_rng(seed)`` (or sets
them by hand, for the ill-conditioned cases of the accuracy corpus: condition
numbers to 1e10, offsets of 1e8 sigma, a scale of 1e-8, weights of 1e-300 and
logits of -1e3), evaluates refvi on them, and records each output's tolerance.
The same refvi version gives bit-identical cases on every machine.
"""

from fnmatch import fnmatchcase
from functools import cache

import numpy as np

from refvi.crosscheck.case import _make_case
from refvi.models.mixture import COVARIANCE_TYPES

__all__ = ["case_names", "get_case", "all_cases", "find_cases"]


def _tril(rng, *shape, diag=(0.5, 1.5)):
    """Random lower Cholesky factors (..., d, d) with diagonal in ``diag``."""
    L = np.tril(rng.normal(scale=0.4, size=shape), -1)
    d = shape[-1]
    idx = np.arange(d)
    L[..., idx, idx] = rng.uniform(*diag, size=shape[:-1])
    return L


def _lower(d, diag, off=0.3):
    """The accuracy corpus's factor: diagonal ``diag``, correlation ``off``."""
    diag = np.asarray(diag, dtype=float)
    return np.tril(np.full((d, d), off), -1) * np.sqrt(np.outer(diag, diag)) + np.diag(
        diag
    )


# ---------------------------------------------------------------------------
# Gaussian and categorical.


def _gaussian_kl(seed):
    rng = np.random.default_rng(seed)
    B, d = 3, 3
    yield (
        "ordinary",
        {
            "mean_q": rng.normal(size=(B, d)),
            "scale_tril_q": _tril(rng, B, d, d),
            "mean_p": rng.normal(size=(B, d)),
            "scale_tril_p": _tril(rng, B, d, d),
        },
        "a batch of 3 pairs in d = 3",
    )
    pairs = [
        ("cond-1e10", [0.1, 0.2], [1.0, 1e-5], 0.3, [0.3, -0.2], [1e-5, 1.0], -0.2),
        ("offset-1e8", [1e8, 1.0], [0.8, 1.2], 0.3, [0.0, 0.0], [1.0, 0.9], 0.3),
        (
            "near-equal-1e-8",
            [1.0, 1.0],
            [1e-8, 1e-8],
            0.3,
            [1.0 + 1e-9, 1.0],
            [1.0001e-8, 1e-8],
            0.3,
        ),
    ]
    for name, m_p, s_p, o_p, m_q, s_q, o_q in pairs:
        yield (
            name,
            {
                "mean_q": [m_q],
                "scale_tril_q": [_lower(2, s_q, o_q)],
                "mean_p": [m_p],
                "scale_tril_p": [_lower(2, s_p, o_p)],
            },
            f"ill-conditioned ({name}) from the accuracy corpus",
        )


def _gaussian_kl_diag(seed):
    rng = np.random.default_rng(seed)
    B, d = 4, 3
    yield (
        "ordinary",
        {
            "mean_q": rng.normal(size=(B, d)),
            "log_std_q": rng.normal(scale=0.5, size=(B, d)),
            "mean_p": rng.normal(size=(B, d)),
            "log_std_p": rng.normal(scale=0.5, size=(B, d)),
        },
        "a batch of 4 pairs in d = 3",
    )


def _gaussian_kl_mixed(seed):
    rng = np.random.default_rng(seed)
    B, d = 3, 3
    yield (
        "ordinary",
        {
            "mean_q": rng.normal(size=(B, d)),
            "scale_tril_q": _tril(rng, B, d, d),
            "mean_p": rng.normal(size=(B, d)),
            "log_std_p": rng.normal(scale=0.5, size=(B, d)),
        },
        "a batch of 3 pairs in d = 3",
    )


def _gaussian_kl_standard_normal(seed):
    rng = np.random.default_rng(seed)
    yield (
        "ordinary",
        {
            "mean_q": rng.normal(size=(5, 2)),
            "log_std_q": rng.normal(scale=0.5, size=(5, 2)),
        },
        "a batch of 5 in d = 2",
    )


def _gaussian_entropy(seed):
    rng = np.random.default_rng(seed)
    yield (
        "ordinary",
        {
            "mean": rng.normal(size=(3, 3)),
            "scale_tril": _tril(rng, 3, 3, 3),
        },
        "a batch of 3 in d = 3",
    )


def _gaussian_log_prob(seed):
    rng = np.random.default_rng(seed)
    mean, L = rng.normal(size=3), _tril(rng, 3, 3)
    yield (
        "ordinary",
        {
            "mean": mean,
            "scale_tril": L,
            "x": rng.normal(size=(4, 3)),
        },
        "4 points in d = 3",
    )
    L = _lower(2, [1.0, 1e-5])
    yield (
        "cond-1e10",
        {
            "mean": [0.5, -1.0],
            "scale_tril": L,
            "x": rng.normal(size=(3, 2)),
        },
        "condition number 1e10, from the accuracy corpus",
    )
    mean = np.array([1e8, -1e8])
    yield (
        "offset-1e8",
        {
            "mean": mean,
            "scale_tril": _lower(2, [0.7, 1.1]),
            "x": mean + rng.normal(size=(3, 2)),
        },
        "data 1e8 sigma from the origin, from the accuracy corpus",
    )


def _categorical_kl(seed):
    rng = np.random.default_rng(seed)
    yield (
        "ordinary",
        {
            "logits_q": rng.normal(size=(3, 4)),
            "logits_p": rng.normal(size=(3, 4)),
        },
        "a batch of 3 pairs over 4 categories",
    )
    yield (
        "extreme-logits",
        {
            "logits_q": [[1e3, -1e3, 0.0], [0.0, np.log(1e-300), -5.0]],
            "logits_p": [[-1e3, -999.0, -1e3], [0.1, -0.5, 1.2]],
        },
        "logits of +-1e3 and a weight of 1e-300, from the accuracy corpus",
    )


def _categorical_entropy(seed):
    rng = np.random.default_rng(seed)
    yield "ordinary", {"logits": rng.normal(size=(3, 4))}, "a batch of 3"


# ---------------------------------------------------------------------------
# Linear-Gaussian.


def _lg_params(rng, d=4, k=2, n=5):
    return {
        "W": rng.normal(size=(d, k)),
        "mu": rng.normal(size=d),
        "psi": rng.uniform(0.3, 1.0, size=d),
        "x": rng.normal(size=(n, d)),
    }


def _lg_log_marginal(seed):
    rng = np.random.default_rng(seed)
    yield "ordinary", _lg_params(rng), "d = 4, k = 2, n = 5"
    rng = np.random.default_rng(2)
    W = rng.normal(size=(3, 2))
    yield (
        "psi-1e-10",
        {
            "W": W,
            "mu": rng.normal(size=3),
            "psi": [1e-10, 1.0, 0.5],
            "x": rng.normal(size=(3, 3)),
        },
        "noise variances 1e-10 .. 1 (condition 1e10), from the accuracy corpus",
    )


def _lg_posterior(seed):
    rng = np.random.default_rng(seed)
    yield "ordinary", _lg_params(rng), "d = 4, k = 2, n = 5"


def _lg_elbo_full(seed):
    rng = np.random.default_rng(seed)
    params = _lg_params(rng)
    params["m_q"] = rng.normal(size=(5, 2))
    params["L_q"] = _tril(rng, 2, 2)
    yield "ordinary", params, "d = 4, k = 2, n = 5, a shared full q covariance"


def _lg_elbo_diag(seed):
    rng = np.random.default_rng(seed)
    params = _lg_params(rng)
    params["m_q"] = rng.normal(size=(5, 2))
    params["log_std_q"] = rng.normal(scale=0.3, size=(5, 2))
    yield "ordinary", params, "d = 4, k = 2, n = 5, diagonal q per datum"


def _lg_em_step(seed):
    rng = np.random.default_rng(seed)
    for noise in ("diag", "isotropic"):
        params = _lg_params(rng, n=20)
        params["x"] = params["x"] @ rng.normal(size=(4, 4))
        yield noise, params, {"noise": noise}, f"noise = {noise!r}, n = 20"


# ---------------------------------------------------------------------------
# Gaussian mixture.


def _scale(rng, ctype, K, d):
    if ctype == "full":
        return "L", _tril(rng, K, d, d)
    if ctype == "tied":
        return "L", _tril(rng, d, d)
    if ctype == "diag":
        return "std", rng.uniform(0.5, 1.5, size=(K, d))
    return "std", rng.uniform(0.5, 1.5, size=K)


def _corpus_scale(ctype, diags):
    """The accuracy corpus's factor of each type from (K, d) standard deviations."""
    diags = np.asarray(diags, dtype=float)
    if ctype == "full":
        return "L", np.stack([_lower(diags.shape[1], s) for s in diags])
    if ctype == "tied":
        return "L", _lower(diags.shape[1], diags[0])
    if ctype == "diag":
        return "std", diags
    return "std", diags[:, 0]


def _mixture_inputs(rng, ctype, K=3, d=2, n=6):
    name, scale = _scale(rng, ctype, K, d)
    return {
        "logits": rng.normal(size=K),
        "means": 2.0 * rng.normal(size=(K, d)),
        name: scale,
        "x": 2.0 * rng.normal(size=(n, d)),
    }


def _mixture_log_marginal(seed):
    rng = np.random.default_rng(seed)
    for ctype in COVARIANCE_TYPES:
        opts = {"covariance_type": ctype}
        yield ctype, _mixture_inputs(rng, ctype), opts, f"{ctype}, K = 3, d = 2"
    for ctype in COVARIANCE_TYPES:
        name, scale = _corpus_scale(ctype, [[1.0, 0.9], [0.6, 1.2], [0.8, 0.8]])
        inputs = {
            "logits": [0.0, np.log(1e-300), -1e3],
            "means": [[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]],
            name: scale,
            "x": [[3.0, 0.1], [0.0, 4.0]],
        }
        yield (
            f"{ctype}-tiny-weights",
            inputs,
            {"covariance_type": ctype},
            ("weights 1e-300 and logit -1e3, from the accuracy corpus"),
        )
    mean = np.array([1e8, -1e8])
    name, scale = _corpus_scale("full", [[0.7, 1.1]] * 2)
    inputs = {
        "logits": np.log([0.3, 0.7]),
        "means": [mean, mean + 2.0],
        name: scale,
        "x": mean + rng.normal(size=(2, 2)),
    }
    yield (
        "full-offset-1e8",
        inputs,
        {"covariance_type": "full"},
        ("data 1e8 sigma from the origin, from the accuracy corpus"),
    )


def _mixture_elbo(seed):
    rng = np.random.default_rng(seed)
    for ctype in COVARIANCE_TYPES:
        inputs = _mixture_inputs(rng, ctype)
        inputs["q_logits"] = rng.normal(size=(6, 3))
        yield ctype, inputs, {"covariance_type": ctype}, f"{ctype}, K = 3, d = 2"


def _mixture_em_step(seed):
    rng = np.random.default_rng(seed)
    for ctype in COVARIANCE_TYPES:
        inputs = _mixture_inputs(rng, ctype, n=30)
        opts = {"covariance_type": ctype, "reg_covar": 1e-6}
        yield ctype, inputs, opts, f"{ctype}, K = 3, d = 2, n = 30, reg_covar 1e-6"


def _mixture_prior(seed):
    rng = np.random.default_rng(seed)
    J, k, d = 3, 2, 4
    yield (
        "ordinary",
        {
            "weights": rng.dirichlet(np.ones(J)),
            "a": 2.0 * rng.normal(size=(J, k)),
            "L_B": _tril(rng, J, k, k),
            "W": rng.normal(size=(d, k)),
            "mu": rng.normal(size=d),
            "psi": rng.uniform(0.3, 1.0, size=d),
            "x": 2.0 * rng.normal(size=(5, d)),
        },
        "J = 3, k = 2, d = 4, n = 5",
    )


def _mixture_kl(seed):
    rng = np.random.default_rng(seed)
    d = 1  # the quadrature converges to its error estimate 3e-16 at order 200
    yield (
        "ordinary",
        {
            "weights_q": rng.dirichlet(np.ones(2)),
            "means_q": rng.normal(size=(2, d)),
            "L_q": _tril(rng, 2, d, d),
            "weights_p": rng.dirichlet(np.ones(3)),
            "means_p": rng.normal(size=(3, d)),
            "L_p": _tril(rng, 3, d, d),
        },
        {"order": 200},
        "q with 2 and p with 3 components in d = 1",
    )


# ---------------------------------------------------------------------------
# Linear VAE and aggregated posterior.


def _vae_inputs(rng, d=3, k=2, n=4):
    return {
        "A": rng.normal(scale=0.5, size=(k, d)),
        "c": rng.normal(scale=0.5, size=k),
        "log_std": rng.normal(scale=0.3, size=k) - 0.5,
        "W": rng.normal(size=(d, k)),
        "mu": rng.normal(size=d),
        "psi": rng.uniform(0.3, 1.0, size=d),
        "x": rng.normal(size=(n, d)),
    }


def _vae_elbo(seed):
    rng = np.random.default_rng(seed)
    yield "ordinary", _vae_inputs(rng), "d = 3, k = 2, n = 4"


def _vae_sgvb(seed):
    rng = np.random.default_rng(seed)
    for estimator in ("kl", "sampled", "path", "iwae"):
        inputs = _vae_inputs(rng)
        inputs["eps"] = rng.standard_normal((5, 4, 2))
        yield (
            estimator,
            inputs,
            {"estimator": estimator},
            (f"estimator {estimator!r}, S = 5 draws"),
        )


def _aggregate(seed):
    rng = np.random.default_rng(seed)
    inputs = _vae_inputs(rng)
    C = rng.normal(size=(3, 3))
    yield (
        "ordinary",
        {
            "A": inputs["A"],
            "c": inputs["c"],
            "log_std": inputs["log_std"],
            "mean_data": rng.normal(size=3),
            "cov_data": C @ C.T + np.eye(3),
        },
        "d = 3, k = 2",
    )


#: quantity -> (seed, generator of (variant, inputs[, options], note)).
_GENERATORS = {
    "gaussian.kl_full": (101, _gaussian_kl),
    "gaussian.kl_diag": (102, _gaussian_kl_diag),
    "gaussian.kl_mixed": (103, _gaussian_kl_mixed),
    "gaussian.kl_standard_normal": (104, _gaussian_kl_standard_normal),
    "gaussian.entropy": (105, _gaussian_entropy),
    "gaussian.log_prob": (106, _gaussian_log_prob),
    "categorical.kl": (111, _categorical_kl),
    "categorical.entropy": (112, _categorical_entropy),
    "linear_gaussian.log_marginal": (121, _lg_log_marginal),
    "linear_gaussian.posterior": (122, _lg_posterior),
    "linear_gaussian.elbo_full": (123, _lg_elbo_full),
    "linear_gaussian.elbo_diag": (124, _lg_elbo_diag),
    "linear_gaussian.em_step": (125, _lg_em_step),
    "mixture.log_marginal": (131, _mixture_log_marginal),
    "mixture.elbo": (132, _mixture_elbo),
    "mixture.em_step": (133, _mixture_em_step),
    "mixture_prior.posterior": (141, _mixture_prior),
    "mixture_kl.bounds": (142, _mixture_kl),
    "vae.elbo": (151, _vae_elbo),
    "vae.sgvb": (152, _vae_sgvb),
    "aggregate.surgery": (153, _aggregate),
}


def _entries():
    """(name, quantity, seed, inputs, options, note) of every case, in order."""
    for quantity, (seed, generate) in _GENERATORS.items():
        for item in generate(seed):
            variant, inputs, *rest = item
            options, note = rest if len(rest) == 2 else ({}, rest[0])
            yield f"{quantity}.{variant}", quantity, seed, inputs, options, note


@cache
def _catalogue():
    out = {}
    for name, quantity, seed, inputs, options, note in _entries():
        rtol = None
        if quantity == "mixture_kl.bounds":
            rtol = _quadrature_rtol(inputs, options["order"])
        out[name] = _make_case(name, quantity, seed, inputs, options, note, rtol)
    return out


def _quadrature_rtol(inputs, order):
    """The relative error estimate of the quadrature KL, for its tolerance."""
    from refvi import mixture_kl
    from refvi.models.mixture import GaussianMixture

    q = GaussianMixture(inputs["weights_q"], inputs["means_q"], inputs["L_q"])
    p = GaussianMixture(inputs["weights_p"], inputs["means_p"], inputs["L_p"])
    res = mixture_kl.kl_quadrature(q, p, order=order)
    return {"kl": float(res.error / abs(res.value))}


def case_names():
    """Names of every case in the catalogue, in catalogue order."""
    return list(_catalogue())


def all_cases():
    """Every :class:`~refvi.crosscheck.case.Case`, in catalogue order."""
    return list(_catalogue().values())


def get_case(name):
    """The case called ``name`` (see :func:`case_names`)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str; got {type(name).__name__}")
    cases = _catalogue()
    if name not in cases:
        raise ValueError(
            f"name must be a case of the catalogue (refvi cases --list); got {name!r}"
        )
    return cases[name]


def find_cases(*patterns):
    """The cases whose names match any of ``patterns`` (shell wildcards:
    ``"mixture.*"``), in catalogue order; every pattern must match a case."""
    cases = _catalogue()
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"patterns must be str; got {type(pattern).__name__}")
        if not any(fnmatchcase(name, pattern) for name in cases):
            raise ValueError(
                f"patterns must match case names (refvi cases --list); {pattern!r} "
                "matches none"
            )
    return [c for n, c in cases.items() if any(fnmatchcase(n, p) for p in patterns)]
