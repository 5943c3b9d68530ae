"""The bad-input matrix: every public entry point x every bad-input kind.

Each public entry point of refvi has a row in ``ENTRIES``: the function and,
for each argument it is called with, an :class:`Arg` holding a factory of a
valid example value and the argument's role. The role decides which bad-input
kinds apply (:data:`ROLE_KINDS`); each kind makes one or more bad variants of
the valid value (:data:`MUTATIONS`). Every case replaces ONE argument by ONE
variant and calls the function by keyword, so a reordered signature needs no
edit and a renamed argument is a one-word edit of its row.

A case passes when the call either

* works (allowed for the kinds in ``MUST_WORK`` and ``EITHER``): no NaN in
  the result, and for a must-work kind whose value equals the valid one
  (float32, int, read-only, list) the same result as the valid call; or
* raises ``ValueError``/``TypeError`` whose message matches the argument's
  name (allowed for every kind but ``MUST_WORK``);

and no input array was changed by the call. Anything else is counted as a
crash (another exception type), unclear (a message not naming the argument),
garbage (a bad input accepted, a NaN result, a must-work result that differs),
refused (a must-work input refused) or mutation.

``python tests/bad_input_matrix.py`` prints the counts.
"""

import dataclasses
import importlib
import inspect
import pkgutil
import re
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import refvi
from refvi import categorical, gaussian
from refvi.models import linear_gaussian, linear_gaussian_em, mixture, mixture_prior
from refvi.verify import montecarlo

# ---------------------------------------------------------------------------
# Outcomes of a case.

RAISE, WORK, EITHER, FLAG = "raise", "work", "either", "flag"
#: Kinds whose input is valid: the call must work (same values) or, when the
#: kind changes the values (int rounding), may work or raise.
MUST_WORK = ("float32", "int", "readonly", "list")
#: Kinds that may work or raise: a valid input at an edge of the domain
#: (finite input that overflows may be refused by name or computed, without NaN).
EDGE = ("one_sample", "overflow")
#: Kinds that break a relation between arguments (their shapes must agree): a
#: refusal may name any argument of the call.
RELATIONAL = ("mismatch", "one_sample", "k_gt_n")


@dataclass(frozen=True)
class Arg:
    """One argument of an entry point.

    make : () -> a fresh valid value.
    role : selects the bad-input kinds (``ROLE_KINDS``).
    name : regex a refusal's message must match (default: the argument's name).
    expect : kind -> RAISE / EITHER / FLAG overriding the default for that kind.
    """

    make: Callable
    role: str
    name: str | None = None
    expect: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """A public entry point: ``fn(**{name: arg.make() for name, arg in args})``."""

    fn: Callable
    args: dict
    exc: tuple = ()  # further exception types that are its contract (assert_*)


@dataclass(frozen=True)
class Outcome:
    entry: str
    arg: str
    kind: str
    variant: str
    status: str  # ok, crash, unclear, garbage, refused, mutation
    detail: str = ""


# ---------------------------------------------------------------------------
# Walking values: arrays inside tuples, dicts, dataclasses and Gaussians.


def _children(value):
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [getattr(value, f.name) for f in dataclasses.fields(value)]
    return []


def _collect(value, leaf, depth=0):
    """The leaves of ``value``: ``leaf(v)`` is a list for a leaf, None otherwise."""
    found = leaf(value)
    if found is not None:
        return found
    if depth > 4:
        return []
    out = []
    for child in _children(value):
        out += _collect(child, leaf, depth + 1)
    return out


def _array_leaf(v):
    return [v] if isinstance(v, np.ndarray) else None


def _float_leaf(v):
    if isinstance(v, (float, np.floating)):
        return [np.asarray(v)]
    if isinstance(v, np.ndarray):
        return [v] if v.dtype.kind == "f" else []
    return None


def _arrays(value):
    """Every ndarray reachable from ``value`` (the objects themselves)."""
    return _collect(value, _array_leaf)


def _floats(value):
    """Float arrays (and floats) in a result, for the NaN check."""
    return _collect(value, _float_leaf)


def _snapshot(kwargs):
    return [(a, a.copy()) for a in _arrays(list(kwargs.values()))]


def _mutated(snapshot):
    for arr, before in snapshot:
        if arr.shape != before.shape or not np.array_equal(
            arr, before, equal_nan=arr.dtype.kind in "fc"
        ):
            return True
    return False


def _has_nan(result):
    return any(np.any(np.isnan(a)) for a in _floats(result))


def _same(a, b):
    fa, fb = _floats(a), _floats(b)
    return len(fa) == len(fb) and all(
        x.shape == y.shape and np.allclose(x, y, rtol=1e-12, atol=0, equal_nan=True)
        for x, y in zip(fa, fb, strict=True)
    )


# ---------------------------------------------------------------------------
# Bad-input kinds. Each mutation maps a valid value to [(variant, bad value)].


def _with(a, index, value):
    out = np.array(a, dtype=float, copy=True)
    out[index] = value
    return out


def _first(a):
    return (0,) * np.ndim(a)


def _diag(a, value):
    out = np.array(a, dtype=float, copy=True)
    d = out.shape[-1]
    out[..., d - 1, d - 1] = value
    return out


def _grow(a, axes):
    """``a`` with one more entry along each axis in ``axes`` (a copy of the last)."""
    out = np.asarray(a)
    for ax in axes:
        idx = [slice(None)] * out.ndim
        idx[ax] = slice(-1, None)
        out = np.concatenate([out, out[tuple(idx)]], axis=ax)
    return out


def _grow_spd(a):
    """(..., d, d) bordered to (..., d + 1, d + 1) with a 1 on the new diagonal."""
    a = np.asarray(a, dtype=float)
    d = a.shape[-1]
    out = np.zeros(a.shape[:-2] + (d + 1, d + 1))
    out[..., :d, :d] = a
    out[..., d, d] = 1.0
    return out


def _readonly(a):
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


def _int(a):
    return np.rint(np.asarray(a)).astype(np.int64)


def _record_variants(value, make_field_bad):
    """Bad variants of a NamedTuple, one per array field."""
    out = []
    for name in value._fields:
        v = getattr(value, name)
        if isinstance(v, (np.ndarray, float, np.floating)):
            bad = make_field_bad(np.atleast_1d(v) if np.ndim(v) == 0 else v)
            out.append((name, value._replace(**{name: bad})))
    return out


def _other_types(value, allowed=()):
    """Instances of the other model and record types (built lazily, valid)."""
    return [
        (type(other).__name__, other)
        for other in OTHER_OBJECTS()
        if type(other) is not type(value) and not isinstance(other, allowed)
    ]


MUTATIONS = {
    # any argument
    "none": lambda v, role: [("None", None)],
    "str": lambda v, role: [("str", "abc")],
    "object": lambda v, role: [("object", object())],
    # arrays: values
    "nan": lambda v, role: [("nan", _with(v, _first(v), np.nan))],
    "posinf": lambda v, role: [("+inf", _with(v, _first(v), np.inf))],
    "neginf": lambda v, role: [("-inf", _with(v, _first(v), -np.inf))],
    "complex": lambda v, role: [("complex", np.asarray(v) + 1j)],
    "bool": lambda v, role: [("bool", np.asarray(v) > 0)],
    # arrays: valid dtypes and containers
    "float32": lambda v, role: [("float32", np.asarray(v, dtype=np.float32))],
    "int": lambda v, role: [("int64", _int(v))],
    "readonly": lambda v, role: [("read-only", _readonly(v))],
    "list": lambda v, role: [("list", np.asarray(v).tolist())],
    # arrays: shapes
    "ndim": lambda v, role: _ndim_variants(v, role),
    "mismatch": lambda v, role: _mismatch_variants(v, role),
    "empty": lambda v, role: [("0 rows", np.asarray(v)[:0])],
    "one_sample": lambda v, role: [("1 row", np.asarray(v)[:1])],
    "k_gt_n": lambda v, role: [("n = K - 1", np.asarray(v)[: K_MIX - 1])],
    # constrained arrays
    "zero_var": lambda v, role: _zero_variants(v, role),
    "neg_var": lambda v, role: _neg_variants(v, role),
    "nonsym": lambda v, role: [("asymmetric", _with(v, (..., 0, 1), 0.3))],
    "indefinite": lambda v, role: [("eigenvalue < 0", _indefinite(v))],
    "bad_chol": lambda v, role: [("upper entry", _with(v, (..., 0, -1), 0.5))],
    "bad_weights": lambda v, role: _weights_variants(v, role),
    # finite input whose squares, products or exponentials overflow float64
    "overflow": lambda v, role: _overflow_variants(v, role),
    # objects
    "wrong_type": lambda v, role: _wrong_type_variants(v, role),
    "record_nan": lambda v, role: _record_variants(
        v, lambda a: _with(a, _first(a), np.nan)
    ),
    "record_shape": lambda v, role: _record_variants(v, lambda a: _grow(a, [-1])),
    # scalars
    "float": lambda v, role: [("2.5", 2.5)],
    "too_large": lambda v, role: [("10**6", 10**6)],
    "negative": lambda v, role: [("-1", -1)],
    "zero": lambda v, role: [("0", 0)],
    "true": lambda v, role: [("True", True)],
    "nan_scalar": lambda v, role: [("nan", float("nan"))],
    "inf_scalar": lambda v, role: [("+inf", float("inf")), ("-inf", -float("inf"))],
    "bad_choice": lambda v, role: [("'nope'", "nope"), ("1", 1)],
    # callables
    "not_callable": lambda v, role: [("3", 3)],
    "nan_fn": lambda v, role: [("returns NaN", _nan_fn(v, role))],
    # random number generators
    "legacy_rng": lambda v, role: [
        ("RandomState", np.random.RandomState(0)),
        ("seed 0", 0),
    ],
}


def _ndim_variants(v, role):
    a = np.asarray(v)
    if role in ("points",):  # batched: any number of leading axes is valid
        return [("scalar", a.reshape(-1)[0])]
    out = [("one more axis", a[None])]
    if a.ndim >= 1:
        out.append(("one axis fewer", a[0]))
    return out


def _mismatch_variants(v, role):
    a = np.asarray(v)
    if role in (
        "chol",
        "chol_stack",
        "cov",
        "cov_stack",
        "chol_batched",
        "cov_batched",
    ):
        return [("d + 1", _grow_spd(a))]
    if role == "data_rows":  # (n, ...) arrays that must match the data's n
        return [("n + 1 rows", _grow(a, [0]))]
    return [("last axis + 1", _grow(a, [-1]))]


def _zero_variants(v, role):
    if role.startswith(("chol", "cov")):
        return [("zero diagonal", _diag(v, 0.0))]
    return [("zero entry", _with(v, _first(v), 0.0))]


def _neg_variants(v, role):
    if role.startswith(("chol", "cov")):
        return [("negative diagonal", _diag(v, -1.0))]
    return [("negative entry", _with(v, _first(v), -0.5))]


def _indefinite(v):
    a = np.array(v, dtype=float, copy=True)
    a[..., 0, 1] = a[..., 1, 0] = 10.0 * np.abs(a).max()
    return a


def _overflow_variants(v, role):
    """Finite values whose squares or products overflow: an entry of 1e200
    (-1e200 too for unconstrained arrays); matrices and positive arrays also
    scaled by 1e200 and by 1e-200 as a whole (valid, but Sigma = L L^T or
    1 / std^2 leaves float64)."""
    if np.ndim(v) == 0:
        return [("1e200", 1e200)]
    out = [("1e200 entry", _with(v, _first(v), 1e200))]
    if role.startswith(("chol", "cov")) or role == "positive":
        a = np.asarray(v, dtype=float)
        return out + [("x 1e200", a * 1e200), ("x 1e-200", a * 1e-200)]
    return out + [("-1e200 entry", _with(v, _first(v), -1e200))]


def _weights_variants(v, role):
    a = np.asarray(v, dtype=float)
    neg = a.copy()
    neg[..., 0] -= 1.0
    neg[..., 1] += 1.0
    return [("sum != 1", a * 0.5), ("negative", neg)]


def _wrong_type_variants(v, role):
    allowed = (gaussian.Gaussian, mixture.GaussianMixture) if role == "dist" else ()
    out = _other_types(v, allowed)
    if role == "record":
        out.append(("plain tuple", tuple(v)))
    if role == "gaussian1":
        g = gaussian.Gaussian(np.zeros((2, v.d)), log_std=np.zeros(v.d))
        out.append(("batched Gaussian", g))
    if role in ("gaussian1", "gaussian", "dist"):
        d = v.d if isinstance(v, gaussian.Gaussian) else _mix_dim(v)
        out.append(("Gaussian of d + 1", gaussian.standard_normal(d + 1)))
    return out


def _mix_dim(m):
    return m.d


def _nan_fn(v, role):
    def f(*args, **kwargs):
        out = v(*args, **kwargs)
        if role == "f_and_grad":
            value, grads = out
            return np.full(np.shape(value), np.nan), grads
        if role == "e_step":
            return out[0], float("nan")
        if isinstance(out, tuple):
            return (np.full(np.shape(out[0]), np.nan), *out[1:])
        return np.full(np.shape(out), np.nan)

    return f


_ANY = ("none", "str", "object")
_VALUES = ("nan", "posinf", "neginf", "complex", "bool")
_VALID = ("float32", "int", "readonly", "list")
_ARRAY = _ANY + _VALUES + _VALID + ("ndim", "mismatch", "empty", "overflow")

#: The kinds tried on an argument of each role.
ROLE_KINDS = {
    "data": _ARRAY + ("one_sample",),  # x (n, d)
    "data_k": _ARRAY + ("one_sample", "k_gt_n"),  # x (n, d) to fit K components
    "data_rows": _ARRAY,  # (n, ...) tied to the data's n
    "datum": _ARRAY,  # one point (d,)
    "points": _ARRAY,  # batched (..., d)
    "latent": _ARRAY + ("one_sample",),  # z (m, k)
    "array": _ARRAY,  # a parameter array of fixed shape
    "positive": _ARRAY + ("zero_var", "neg_var"),
    "chol": _ARRAY + ("zero_var", "neg_var", "bad_chol"),
    "chol_stack": _ARRAY + ("zero_var", "neg_var", "bad_chol"),
    "chol_batched": _ANY
    + _VALUES
    + _VALID
    + ("mismatch", "empty")
    + ("overflow",)
    + ("zero_var", "neg_var", "bad_chol"),
    "cov": _ARRAY + ("zero_var", "neg_var", "nonsym", "indefinite"),
    "cov_stack": _ARRAY + ("zero_var", "neg_var", "nonsym", "indefinite"),
    "cov_batched": _ANY
    + _VALUES
    + _VALID
    + ("mismatch", "empty")
    + ("overflow",)
    + ("zero_var", "neg_var", "nonsym", "indefinite"),
    "weights": _ARRAY + ("bad_weights",),
    "resp": _ARRAY + ("bad_weights", "one_sample"),
    "model": _ANY + ("wrong_type",),
    "gaussian": _ANY + ("wrong_type",),
    "gaussian1": _ANY + ("wrong_type",),
    "gaussian_alone": _ANY + ("wrong_type",),  # no other argument to disagree with
    "dist": _ANY + ("wrong_type",),
    "record": _ANY + ("wrong_type", "record_nan", "record_shape"),
    "int": ("none", "str", "float", "negative", "true"),
    "int0": ("none", "str", "float", "negative", "true"),  # 0 allowed
    "index": ("none", "str", "float", "negative", "true", "too_large"),
    "float": ("none", "str", "nan_scalar", "inf_scalar", "negative", "overflow"),
    "choice": ("none", "bad_choice"),
    "rng": ("none", "str", "legacy_rng"),
    "fn": ("none", "not_callable", "nan_fn"),
    "f_and_grad": ("none", "not_callable", "nan_fn"),
    "e_step": ("none", "not_callable", "nan_fn"),
    "params": ("none", "str", "object"),
    "fixed": (),  # ``self`` of a method: always the valid object
}


def _expectation(kind, arg, changed, optional):
    """RAISE, WORK, EITHER or FLAG for one case."""
    if kind in arg.expect:
        return arg.expect[kind]
    if kind == "none" and optional:
        return EITHER  # None is the documented default
    if kind in MUST_WORK:
        return EITHER if changed else WORK
    if kind in EDGE:
        return EITHER
    return RAISE


# ---------------------------------------------------------------------------
# Valid examples. Values are exact in float32 and, where a constraint could
# break, integer-valued, so float32/int copies are the same input.

K_MIX, D_MIX = 3, 2  # mixture: K components in d dimensions
D_LG, K_LG = 3, 2  # linear-Gaussian: d, k


def _x_mix():
    return np.array(
        [
            [0.5, 1.0],
            [1.5, -0.5],
            [-1.0, 2.0],
            [2.5, 0.25],
            [-0.75, -1.25],
            [0.0, 0.5],
            [3.0, 1.5],
            [-2.0, -0.5],
        ]
    )


def _x_lg():
    return np.array(
        [
            [0.5, 1.0, -0.5],
            [1.5, -0.5, 0.25],
            [-1.0, 2.0, 1.0],
            [2.5, 0.25, -1.5],
            [-0.75, -1.25, 0.5],
            [0.0, 0.5, 2.0],
        ]
    )


def _L2():
    return np.array([[2.0, 0.0], [0.5, 1.0]])


def _L_stack():
    return np.array(
        [[[1.0, 0.0], [0.5, 1.0]], [[2.0, 0.0], [-0.5, 1.0]], [[1.0, 0.0], [0.0, 2.0]]]
    )


def _gaussian():
    return gaussian.Gaussian(np.array([0.5, -1.0]), scale_tril=_L2())


def _gaussian_diag():
    return gaussian.Gaussian(np.array([0.0, 1.0]), log_std=np.array([0.25, -0.5]))


def _gm_kwargs():
    return {
        "weights": np.array([0.5, 0.25, 0.25]),
        "means": np.array([[0.0, 0.0], [2.0, 1.0], [-1.0, 1.5]]),
        "L": _L_stack(),
    }


def _gm_scale(ctype):
    """(name, valid value, role) of the scale parameter of ``ctype``: the
    Cholesky factor L (full, tied) or the standard deviations std (diag,
    spherical)."""
    if ctype == "full":
        return "L", _L_stack(), "chol_stack"
    if ctype == "tied":
        return "L", _L_stack()[0], "chol"
    if ctype == "diag":
        return "std", np.array([[1.0, 0.5], [2.0, 1.0], [1.0, 2.0]]), "positive"
    return "std", np.array([1.0, 2.0, 0.5]), "positive"


def _gm(ctype="full"):
    name, scale, _ = _gm_scale(ctype)
    kw = {k: v for k, v in _gm_kwargs().items() if k != "L"}
    return mixture.GaussianMixture(**kw, covariance_type=ctype, **{name: scale})


def _gm_covariances(ctype):
    """A valid ``covariances`` of from_covariances for ``ctype`` and its role."""
    name, scale, _ = _gm_scale(ctype)
    if ctype == "full":
        return scale @ np.swapaxes(scale, 1, 2), "cov_stack"
    if ctype == "tied":
        return scale @ scale.T, "cov"
    return scale**2, "positive"


def _lg_kwargs():
    return {
        "W": np.array([[1.0, 0.5], [0.0, 1.5], [-0.5, 1.0]]),
        "mu": np.array([0.5, -0.5, 1.0]),
        "psi": np.array([1.0, 0.5, 2.0]),
    }


def _lg():
    return linear_gaussian.LinearGaussian(**_lg_kwargs())


def _mp_kwargs():
    return {
        "weights": np.array([0.75, 0.25]),
        "a": np.array([[0.0, 1.0], [1.5, -0.5]]),
        "L_B": np.array([[[1.0, 0.0], [0.5, 1.0]], [[0.5, 0.0], [0.0, 1.5]]]),
        **_lg_kwargs(),
    }


def _mp():
    return mixture_prior.MixturePrior(**_mp_kwargs())


def _stats():
    return linear_gaussian_em.sufficient_stats(_x_lg())


def _estats():
    return linear_gaussian_em.expected_stats(_lg(), _stats())


def _post():
    return linear_gaussian.posterior(_lg(), _x_lg())


def _mix_post():
    return mixture_prior.posterior(_mp(), _x_lg()[:4])


def _mc():
    return montecarlo.mc_mean(np.array([0.5, 1.0, 1.5, 2.5]))


def _r_hard():
    """Hard responsibilities (n, K): every component owns rows."""
    return np.eye(K_MIX)[[0, 1, 2, 0, 1, 2, 0, 1]].astype(float)


def _rng():
    return np.random.default_rng(0)


def OTHER_OBJECTS():
    """One valid instance of each model and record type (for the wrong-type kind)."""
    return [_gaussian(), _gm(), _lg(), _mp(), _stats(), _estats(), _post(), _mc()]


def _quadratic_and_grad(params):
    a = np.asarray(params["a"])
    return float(np.sum(a**2)), {"a": 2.0 * a}


def _quadratic(params):
    return _quadratic_and_grad(params)[0]


def _toy_em():
    """run_em's callables for theta -> (theta + 1) / 2 (log-lik -(theta - 1)^2)."""
    return {
        "model": 0.0,
        "e_step": lambda m: (m, -((m - 1.0) ** 2)),
        "m_step": lambda post: (post + 1.0) / 2.0,
        "elbo": lambda m, post: -((m - 1.0) ** 2),
    }


# Argument shorthands ------------------------------------------------------


def A(make, role, name=None, **expect):
    return Arg(make, role, name, expect)


def const(value):
    return lambda: value


X_MIX = A(_x_mix, "data")
X_FREE = A(_x_mix, "data", mismatch=EITHER)  # x alone fixes d
X_LG_FREE = A(_x_lg, "data", mismatch=EITHER)
X_LG = A(_x_lg, "data")
DATUM_LG = A(lambda: _x_lg()[0], "datum")
Z_LG = A(lambda: np.array([[0.5, -0.5], [1.0, 0.0], [0.0, 2.0], [-1.5, 0.5]]), "latent")
LG = A(_lg, "model")
MP = A(_mp, "model")
DOUT_MIX = A(lambda: np.linspace(0.5, 1.5, 8), "data_rows")
DOUT_LG = A(lambda: np.linspace(0.5, 1.5, 6), "data_rows")
Q_LOGITS = A(lambda: np.tile([0.5, -0.5, 0.0], (8, 1)), "data_rows")
M_Q = A(lambda: np.tile([0.5, -0.5], (6, 1)), "data_rows")
L_Q = A(_L2, "chol")
REG = A(const(1e-6), "float")
TOL = A(const(1e-10), "float")
MAX_ITER = A(const(20), "int0")
RNG = A(_rng, "rng")
P_GAUSS = A(_gaussian, "gaussian")
Q_GAUSS = A(_gaussian_diag, "gaussian")
POINTS = A(lambda: np.array([[0.5, 1.0], [1.5, -0.5], [-1.0, 2.0]]), "points")
LOGITS = A(lambda: np.array([[0.5, -1.0, 0.0], [2.0, 1.0, -0.5]]), "points")
LOGITS_FREE = A(
    lambda: np.array([[0.5, -1.0, 0.0], [2.0, 1.0, -0.5]]), "points", mismatch=EITHER
)  # logits alone fix K
STATS = A(_stats, "record")
ESTATS = A(_estats, "record")
POST = A(_post, "record")
#: The mixture covariance types; each mixture row is called with every one.
TYPES = mixture.COVARIANCE_TYPES
GMS = [A(lambda c=c: _gm(c), "model") for c in TYPES]
CTYPES = [A(const(c), "choice") for c in TYPES]
QUAD_MEAN = A(lambda: np.array([0.5, -1.0]), "array")
QUAD_L = A(_L2, "chol")
PARAMS = A(lambda: {"a": np.array([0.5, -1.0, 2.0])}, "params")
FG = A(const(_quadratic_and_grad), "f_and_grad", "f_and_grad", nan_fn=FLAG)


def _lazy():
    """The entry table; built on first use so that import errors name the row."""
    from refvi import mixture_kl
    from refvi.models import (
        em,
        linear_gaussian,
        linear_gaussian_em,
        mixture,
        mixture_em,
        mixture_prior,
    )
    from refvi.verify import gradcheck, montecarlo, quadrature

    lg, lge, mix, mem, mp = (
        linear_gaussian,
        linear_gaussian_em,
        mixture,
        mixture_em,
        mixture_prior,
    )
    E = Entry
    e = {}
    # ---- refvi.gaussian
    e["refvi.gaussian.Gaussian"] = [
        E(
            gaussian.Gaussian,
            {
                "mean": A(lambda: np.array([0.5, -1.0]), "points"),
                "scale_tril": A(_L2, "chol_batched"),
            },
        ),
        E(
            gaussian.Gaussian,
            {
                "mean": A(lambda: np.array([0.5, -1.0]), "points"),
                "cov": A(lambda: _L2() @ _L2().T, "cov_batched"),
            },
        ),
        E(
            gaussian.Gaussian,
            {
                "mean": A(lambda: np.array([0.5, -1.0]), "points"),
                "log_std": A(lambda: np.array([0.25, -0.5]), "points"),
            },
        ),
    ]
    e["refvi.gaussian.Gaussian.to_full"] = E(
        gaussian.Gaussian.to_full, {"self": A(_gaussian_diag, "fixed")}
    )
    e["refvi.gaussian.standard_normal"] = E(
        gaussian.standard_normal, {"d": A(const(2), "int")}
    )
    for name in ("log_prob", "log_prob_and_grad"):
        args = {"p": P_GAUSS, "x": POINTS}
        if name.endswith("_grad"):
            args["dout"] = A(lambda: np.linspace(0.5, 1.5, 3), "data_rows")
        e[f"refvi.gaussian.{name}"] = [
            E(getattr(gaussian, name), args),
            E(getattr(gaussian, name), {**args, "p": Q_GAUSS}),
        ]
    for name in ("reparameterize", "reparameterize_and_grad"):
        args = {"p": P_GAUSS, "eps": POINTS}
        if name.endswith("_grad"):
            args["dout"] = A(lambda: np.ones((3, 2)), "array")
        e[f"refvi.gaussian.{name}"] = [
            E(getattr(gaussian, name), args),
            E(getattr(gaussian, name), {**args, "p": Q_GAUSS}),
        ]
    P_ALONE = A(_gaussian, "gaussian_alone")
    DOUT_SCALAR = A(const(2.0), "float", negative=EITHER)
    e["refvi.gaussian.sample"] = E(
        gaussian.sample, {"p": P_ALONE, "rng": RNG, "n": A(const(4), "int")}
    )
    e["refvi.gaussian.entropy"] = E(gaussian.entropy, {"p": P_ALONE})
    e["refvi.gaussian.entropy_and_grad"] = E(
        gaussian.entropy_and_grad, {"p": P_ALONE, "dout": DOUT_SCALAR}
    )
    e["refvi.gaussian.kl"] = [
        E(gaussian.kl, {"q": Q_GAUSS, "p": P_GAUSS}),
        E(gaussian.kl, {"q": P_GAUSS, "p": Q_GAUSS}),
    ]
    e["refvi.gaussian.kl_and_grad"] = [
        E(gaussian.kl_and_grad, {"q": Q_GAUSS, "p": P_GAUSS, "dout": DOUT_SCALAR}),
        E(gaussian.kl_and_grad, {"q": Q_GAUSS, "p": Q_GAUSS}),
    ]
    # ---- refvi.categorical
    DOUT2 = A(lambda: np.array([1.0, 2.0]), "array")
    for name in ("log_softmax", "softmax", "entropy"):
        e[f"refvi.categorical.{name}"] = E(
            getattr(categorical, name), {"logits": LOGITS_FREE}
        )
    e["refvi.categorical.entropy_and_grad"] = E(
        categorical.entropy_and_grad,
        {"logits": LOGITS_FREE, "dout": DOUT2},
    )
    K_OUT = A(
        lambda: np.array([0, 2]), "array", r"\bk\b|\bdout\b", ndim=EITHER, float32=RAISE
    )  # k: integers, broadcast
    e["refvi.categorical.log_prob"] = E(
        categorical.log_prob, {"logits": LOGITS_FREE, "k": K_OUT}
    )
    e["refvi.categorical.log_prob_and_grad"] = E(
        categorical.log_prob_and_grad,
        {
            "logits": LOGITS_FREE,
            "k": K_OUT,
            "dout": DOUT2,
        },
    )
    e["refvi.categorical.kl"] = E(
        categorical.kl, {"logits_q": LOGITS, "logits_p": LOGITS}
    )
    e["refvi.categorical.kl_and_grad"] = E(
        categorical.kl_and_grad,
        {
            "logits_q": LOGITS,
            "logits_p": LOGITS,
            "dout": DOUT2,
        },
    )
    # ---- refvi.mixture_kl
    DIST_P = A(_gaussian, "dist")
    DISTS_Q = [A(lambda c=c: _gm(c), "dist") for c in TYPES]
    e["refvi.mixture_kl.kl_quadrature"] = [
        E(mixture_kl.kl_quadrature, {"q": q, "p": DIST_P, "order": A(const(6), "int")})
        for q in DISTS_Q
    ]
    e["refvi.mixture_kl.kl_montecarlo"] = [
        E(
            mixture_kl.kl_montecarlo,
            {"q": q, "p": DIST_P, "rng": RNG, "n_samples": A(const(50), "int")},
        )
        for q in DISTS_Q
    ]
    for name in ("kl_variational", "kl_bounds"):
        e[f"refvi.mixture_kl.{name}"] = [
            E(getattr(mixture_kl, name), {"q": q, "p": DIST_P}) for q in DISTS_Q
        ]
    e["refvi.mixture_kl.kl_variational_upper_bound"] = [
        E(
            mixture_kl.kl_variational_upper_bound,
            {"q": q, "p": DIST_P, "n_iter": A(const(5), "int0")},
        )
        for q in DISTS_Q
    ]
    # ---- refvi.models.mixture, each row with every covariance type
    e["refvi.models.mixture.GaussianMixture"] = []
    e["refvi.models.mixture.GaussianMixture.from_logits"] = []
    e["refvi.models.mixture.GaussianMixture.from_covariances"] = []
    # a spherical scale (K,) does not fix d: the means alone do
    MEANS = {
        c: A(lambda: _gm_kwargs()["means"], "array", **spherical_d)
        for c, spherical_d in zip(
            TYPES, [{}, {}, {}, {"mismatch": EITHER}], strict=True
        )
    }
    for ctype, ct in zip(TYPES, CTYPES, strict=True):
        scale_name, _, scale_role = _gm_scale(ctype)
        scale = A(lambda c=ctype: _gm_scale(c)[1], scale_role)
        e["refvi.models.mixture.GaussianMixture"].append(
            E(
                mix.GaussianMixture,
                {
                    "weights": A(lambda: _gm_kwargs()["weights"], "weights"),
                    "means": MEANS[ctype],
                    scale_name: scale,
                    "covariance_type": ct,
                },
            )
        )
        e["refvi.models.mixture.GaussianMixture.from_logits"].append(
            E(
                mix.GaussianMixture.from_logits,
                {
                    # a -inf logit is a zero weight (an emptied component): valid
                    "logits": A(
                        lambda: np.array([0.5, -1.0, 0.0]), "array", neginf=EITHER
                    ),
                    "means": MEANS[ctype],
                    scale_name: scale,
                    "covariance_type": ct,
                },
            )
        )
        e["refvi.models.mixture.GaussianMixture.from_covariances"].append(
            E(
                mix.GaussianMixture.from_covariances,
                {
                    "weights": A(lambda: _gm_kwargs()["weights"], "weights"),
                    "means": MEANS[ctype],
                    "covariances": A(
                        lambda c=ctype: _gm_covariances(c)[0],
                        _gm_covariances(ctype)[1],
                    ),
                    "covariance_type": ct,
                },
            )
        )
    for name in ("covariances", "dense_covariances"):
        e[f"refvi.models.mixture.GaussianMixture.{name}"] = [
            E(getattr(mix.GaussianMixture, name), {"self": A(g.make, "fixed")})
            for g in GMS
        ]
    e["refvi.models.mixture.log_prior"] = [E(mix.log_prior, {"model": g}) for g in GMS]
    for name in (
        "log_lik",
        "log_joint",
        "log_marginal",
        "log_responsibilities",
        "responsibilities",
    ):
        e[f"refvi.models.mixture.{name}"] = [
            E(getattr(mix, name), {"model": g, "x": X_MIX}) for g in GMS
        ]
    e["refvi.models.mixture.log_marginal_and_grad"] = [
        E(mix.log_marginal_and_grad, {"model": g, "x": X_MIX, "dout": DOUT_MIX})
        for g in GMS
    ]
    for name in ("elbo", "kl_to_posterior"):
        e[f"refvi.models.mixture.{name}"] = [
            E(getattr(mix, name), {"model": g, "x": X_MIX, "q_logits": Q_LOGITS})
            for g in GMS
        ]
        e[f"refvi.models.mixture.{name}_and_grad"] = [
            E(
                getattr(mix, name + "_and_grad"),
                {"model": g, "x": X_MIX, "q_logits": Q_LOGITS, "dout": DOUT_MIX},
            )
            for g in GMS
        ]
    # ---- refvi.models.mixture_em, each row with every covariance type
    R = A(_r_hard, "resp")
    e["refvi.models.mixture_em.e_step"] = [
        E(mem.e_step, {"model": g, "x": X_MIX}) for g in GMS
    ]
    e["refvi.models.mixture_em.m_step"] = []
    for g, ct in zip(GMS, CTYPES, strict=True):
        e["refvi.models.mixture_em.m_step"] += [
            E(
                mem.m_step,
                {
                    "x": X_FREE,
                    "r": R,
                    "covariance_type": ct,
                    "reg_covar": REG,
                    "previous": A(g.make, "model", none=EITHER),
                },
            ),
            E(
                mem.m_step,
                {
                    "x": X_FREE,
                    "r": A(lambda g=g: mem.e_step(_x_mix(), g.make()), "resp"),
                    "covariance_type": ct,
                },
            ),
        ]
    for name in ("auxiliary", "auxiliary_and_grad"):
        e[f"refvi.models.mixture_em.{name}"] = [
            E(getattr(mem, name), {"model": g, "x": X_MIX, "r": R, "reg_covar": REG})
            for g in GMS
        ]
    e["refvi.models.mixture_em.kmeans_plusplus_init"] = [
        E(
            mem.kmeans_plusplus_init,
            {
                "x": A(_x_mix, "data_k", mismatch=EITHER),
                "n_components": A(const(3), "int"),
                "covariance_type": ct,
                "rng": RNG,
                "reg_covar": REG,
            },
        )
        for ct in CTYPES
    ]
    e["refvi.models.mixture_em.em"] = [
        E(
            mem.em,
            {
                "x": A(_x_mix, "data_k"),
                "init": g,
                "reg_covar": REG,
                "tol": TOL,
                "max_iter": MAX_ITER,
            },
        )
        for g in GMS
    ]
    # ---- refvi.models.em
    e["refvi.models.em.run_em"] = E(
        em.run_em,
        {
            "model": A(lambda: _toy_em()["model"], "fixed"),
            "e_step": A(lambda: _toy_em()["e_step"], "e_step"),
            "m_step": A(lambda: _toy_em()["m_step"], "fn"),
            "elbo": A(lambda: _toy_em()["elbo"], "fn"),
            "n": A(const(5), "int"),
            "tol": TOL,
            "max_iter": MAX_ITER,
        },
    )
    # ---- refvi.models.linear_gaussian
    e["refvi.models.linear_gaussian.LinearGaussian"] = E(
        lg.LinearGaussian,
        {
            "W": A(lambda: _lg_kwargs()["W"], "array", mismatch=EITHER),  # k is free
            "mu": A(lambda: _lg_kwargs()["mu"], "array"),
            "psi": A(lambda: _lg_kwargs()["psi"], "positive"),
        },
    )
    e["refvi.models.linear_gaussian.LinearGaussian.ppca"] = E(
        lg.LinearGaussian.ppca,
        {
            "W": A(lambda: _lg_kwargs()["W"], "array", mismatch=EITHER),
            "mu": A(lambda: _lg_kwargs()["mu"], "array"),
            "sigma2": A(const(0.5), "float", zero=RAISE),
        },
    )
    e["refvi.models.linear_gaussian.log_prior"] = E(
        lg.log_prior, {"model": LG, "z": Z_LG}
    )
    for name in ("log_lik", "log_joint", "log_posterior"):
        e[f"refvi.models.linear_gaussian.{name}"] = E(
            getattr(lg, name), {"model": LG, "x": DATUM_LG, "z": Z_LG}
        )
    e["refvi.models.linear_gaussian.posterior"] = E(
        lg.posterior, {"model": LG, "x": X_LG}
    )
    e["refvi.models.linear_gaussian.log_marginal"] = [
        E(
            lg.log_marginal,
            {"model": LG, "x": X_LG, "method": A(const("woodbury"), "choice")},
        ),
        E(
            lg.log_marginal,
            {"model": LG, "x": X_LG, "method": A(const("dense"), "choice")},
        ),
    ]
    e["refvi.models.linear_gaussian.log_marginal_and_grad"] = E(
        lg.log_marginal_and_grad, {"model": LG, "x": X_LG, "dout": DOUT_LG}
    )
    for name in ("expected_complete_loglik", "elbo", "kl_to_posterior"):
        for suffix in ("", "_and_grad"):
            fn = getattr(lg, name + suffix, None)
            if fn is None:
                continue
            extra = {"dout": DOUT_LG} if suffix else {}
            e[f"refvi.models.linear_gaussian.{name}{suffix}"] = [
                E(fn, {"model": LG, "x": X_LG, "m_q": M_Q, "L_q": L_Q, **extra}),
                E(
                    fn,
                    {
                        "model": LG,
                        "x": X_LG,
                        "m_q": M_Q,
                        # one axis fewer is the shared (k, k) form
                        "L_q": A(
                            lambda: np.stack([_L2()] * 6), "chol_stack", ndim=EITHER
                        ),
                    },
                ),
                E(
                    fn,
                    {
                        "model": LG,
                        "x": X_LG,
                        "m_q": M_Q,
                        "log_std_q": A(
                            lambda: np.tile([0.25, -0.5], (6, 1)), "data_rows"
                        ),
                    },
                ),
            ]
    # ---- refvi.models.linear_gaussian_em
    e["refvi.models.linear_gaussian_em.sufficient_stats"] = E(
        lge.sufficient_stats, {"x": X_LG_FREE}
    )
    e["refvi.models.linear_gaussian_em.log_marginal_total"] = E(
        lge.log_marginal_total, {"model": LG, "stats": STATS}
    )
    e["refvi.models.linear_gaussian_em.e_step"] = E(
        lge.e_step, {"x": X_LG, "model": LG}
    )
    e["refvi.models.linear_gaussian_em.expected_stats"] = E(
        lge.expected_stats, {"model": LG, "stats": STATS}
    )
    e["refvi.models.linear_gaussian_em.expected_stats_from_posterior"] = E(
        lge.expected_stats_from_posterior, {"x": X_LG_FREE, "post": POST}
    )
    e["refvi.models.linear_gaussian_em.elbo_total"] = E(
        lge.elbo_total, {"model": LG, "estats": ESTATS}
    )
    NOISE = A(const("diag"), "choice")
    FLOOR = A(const(1e-6), "float", zero=RAISE)
    e["refvi.models.linear_gaussian_em.m_step_from_stats"] = E(
        lge.m_step_from_stats, {"estats": ESTATS, "noise": NOISE, "psi_floor": FLOOR}
    )
    e["refvi.models.linear_gaussian_em.m_step"] = E(
        lge.m_step, {"x": X_LG_FREE, "post": POST, "noise": NOISE, "psi_floor": FLOOR}
    )
    e["refvi.models.linear_gaussian_em.em"] = E(
        lge.em,
        {
            "x": X_LG,
            "init": LG,
            "noise": NOISE,
            "tol": TOL,
            "max_iter": MAX_ITER,
            "psi_floor": FLOOR,
        },
    )
    e["refvi.models.linear_gaussian_em.em_from_stats"] = E(
        lge.em_from_stats,
        {
            "stats": STATS,
            "init": LG,
            "noise": NOISE,
            "tol": TOL,
            "max_iter": MAX_ITER,
            "psi_floor": FLOOR,
        },
    )
    e["refvi.models.linear_gaussian_em.ppca_mle"] = E(
        lge.ppca_mle, {"x": X_LG_FREE, "k": A(const(1), "int"), "psi_floor": FLOOR}
    )
    e["refvi.models.linear_gaussian_em.ppca_mle_from_stats"] = E(
        lge.ppca_mle_from_stats,
        {"stats": STATS, "k": A(const(1), "int"), "psi_floor": FLOOR},
    )
    # ---- refvi.models.mixture_prior
    mpk = _mp_kwargs
    e["refvi.models.mixture_prior.MixturePrior"] = E(
        mp.MixturePrior,
        {
            "weights": A(lambda: mpk()["weights"], "weights"),
            "a": A(lambda: mpk()["a"], "array"),
            "L_B": A(lambda: mpk()["L_B"], "chol_stack"),
            "W": A(lambda: mpk()["W"], "array"),
            "mu": A(lambda: mpk()["mu"], "array"),
            "psi": A(lambda: mpk()["psi"], "positive"),
        },
    )
    e["refvi.models.mixture_prior.MixturePrior.from_covariances"] = E(
        mp.MixturePrior.from_covariances,
        {
            "weights": A(lambda: mpk()["weights"], "weights"),
            "a": A(lambda: mpk()["a"], "array"),
            "B": A(lambda: mpk()["L_B"] @ np.swapaxes(mpk()["L_B"], 1, 2), "cov_stack"),
            "W": A(lambda: mpk()["W"], "array"),
            "mu": A(lambda: mpk()["mu"], "array"),
            "psi": A(lambda: mpk()["psi"], "positive"),
        },
    )
    e["refvi.models.mixture_prior.MixturePosterior.mixture"] = E(
        mp.MixturePosterior.mixture,
        {"self": A(_mix_post, "fixed"), "i": A(const(1), "index")},
    )
    e["refvi.models.mixture_prior.marginal"] = E(mp.marginal, {"model": MP})
    e["refvi.models.mixture_prior.log_marginal"] = E(
        mp.log_marginal, {"model": MP, "x": X_LG}
    )
    e["refvi.models.mixture_prior.posterior"] = E(
        mp.posterior, {"model": MP, "x": X_LG}
    )
    e["refvi.models.mixture_prior.log_prior"] = E(
        mp.log_prior, {"model": MP, "z": Z_LG}
    )
    for name in ("log_lik", "log_joint", "log_posterior"):
        e[f"refvi.models.mixture_prior.{name}"] = E(
            getattr(mp, name), {"model": MP, "x": DATUM_LG, "z": Z_LG}
        )
    Q_MP = A(
        lambda: gaussian.Gaussian(np.array([0.5, 0.0]), scale_tril=_L2()), "gaussian1"
    )
    for name in ("elbo_quadrature", "kl_to_posterior_quadrature"):
        e[f"refvi.models.mixture_prior.{name}"] = E(
            getattr(mp, name),
            {"model": MP, "x": X_LG, "q": Q_MP, "order": A(const(6), "int")},
        )
    for name in ("elbo_montecarlo", "kl_to_posterior_montecarlo"):
        e[f"refvi.models.mixture_prior.{name}"] = E(
            getattr(mp, name),
            {
                "model": MP,
                "x": X_LG,
                "q": Q_MP,
                "rng": RNG,
                "n_samples": A(const(50), "int"),
            },
        )
    # ---- refvi.verify.quadrature
    e["refvi.verify.quadrature.gauss_hermite_rule"] = E(
        quadrature.gauss_hermite_rule,
        {"order": A(const(5), "int"), "d": A(const(2), "int")},
    )
    SQUARE = A(const(lambda z: z[:, 0] ** 2), "fn", "f")
    e["refvi.verify.quadrature.expect_gaussian"] = E(
        quadrature.expect_gaussian,
        {"f": SQUARE, "mean": QUAD_MEAN, "L": QUAD_L, "order": A(const(8), "int")},
    )
    e["refvi.verify.quadrature.expect_gaussian_refined"] = E(
        quadrature.expect_gaussian_refined,
        {
            "f": SQUARE,
            "mean": QUAD_MEAN,
            "L": QUAD_L,
            "rtol": A(const(1e-10), "float"),
            "orders": A(const((4, 8)), "fixed"),
        },
    )
    e["refvi.verify.quadrature.log_expect_gaussian"] = E(
        quadrature.log_expect_gaussian,
        {
            "log_f": A(const(lambda z: -0.5 * z[:, 0] ** 2), "fn", "log_f"),
            "mean": QUAD_MEAN,
            "L": QUAD_L,
            "order": A(const(8), "int"),
        },
    )
    e["refvi.verify.quadrature.integrate"] = E(
        quadrature.integrate,
        {
            "f": A(const(lambda z: np.exp(-0.5 * z[:, 0] ** 2)), "fn", "f"),
            "d": A(const(1), "int"),
            "center": A(
                lambda: np.array([0.5]), "array", ndim=EITHER
            ),  # a scalar broadcasts
            "scale": A(lambda: np.array([2.0]), "positive", ndim=EITHER),
            "epsrel": A(const(1e-10), "float", negative=RAISE),
            "epsabs": A(const(0.0), "float"),
        },
    )
    e["refvi.verify.quadrature.expect_discrete"] = E(
        quadrature.expect_discrete,
        {
            "f": A(const(lambda k: k**2.0), "fn", "f"),
            "probs": A(lambda: np.array([0.5, 0.25, 0.25]), "weights", ndim=EITHER),
        },
    )  # (n, K)
    # ---- refvi.verify.gradcheck
    e["refvi.verify.gradcheck.numerical_gradient"] = E(
        gradcheck.numerical_gradient,
        {
            "f": A(const(_quadratic), "fn", "f", nan_fn=EITHER),
            "params": PARAMS,
            "step": A(const(1e-3), "float", zero=RAISE),
        },
    )
    e["refvi.verify.gradcheck.gradcheck"] = E(
        gradcheck.gradcheck,
        {"f_and_grad": FG, "params": PARAMS, "rtol": A(const(1e-7), "float")},
    )
    e["refvi.verify.gradcheck.assert_gradcheck"] = E(
        gradcheck.assert_gradcheck,
        {"f_and_grad": FG, "params": PARAMS},
        exc=(AssertionError,),
    )
    e["refvi.verify.gradcheck.taylor_test"] = E(
        gradcheck.taylor_test,
        {
            "f_and_grad": FG,
            "params": PARAMS,
            "rng": RNG,
            "n_directions": A(const(2), "int"),
        },
    )
    # ---- refvi.verify.montecarlo
    e["refvi.verify.montecarlo.mc_mean"] = E(
        montecarlo.mc_mean,
        {
            "samples": A(
                lambda: np.array([[0.5, 1.0], [1.5, -0.5], [-1.0, 2.0]]),
                "array",
                ndim=EITHER,
                mismatch=EITHER,
            ),  # any shape with >= 2 samples
            "axis": A(const(0), "int0", negative=EITHER),
        },
    )
    MC = A(_mc, "record")
    e["refvi.verify.montecarlo.z_test"] = E(
        montecarlo.z_test,
        {
            "estimate": MC,
            "target": A(const(1.25), "float", negative=EITHER),
            "n_sigma": A(const(5.0), "float"),
        },
    )
    e["refvi.verify.montecarlo.assert_z_test"] = E(
        montecarlo.assert_z_test,
        {
            "estimate": MC,
            "target": A(const(1.25), "float", negative=EITHER),
            "n_sigma": A(const(5.0), "float"),
        },
        exc=(AssertionError,),
    )
    e.update(_inference_rows())
    e.update(_crosscheck_rows())
    return {
        name: rows if isinstance(rows, list) else [rows] for name, rows in e.items()
    }


def _crosscheck_rows():
    """Rows of refvi.crosscheck and refvi.testing."""
    from refvi import testing
    from refvi.crosscheck import case, catalogue, schema, stochastic

    # the package re-exports the function compare under its module's name
    compare = importlib.import_module("refvi.crosscheck.compare")

    E = Entry
    name = "gaussian.kl_standard_normal.ordinary"

    def refvi_itself():  # a correct "user" implementation
        return lambda **kw: case.evaluate("gaussian.kl_standard_normal", kw, {})

    FN = A(refvi_itself, "fn")
    CASE = A(const(name), "choice")

    def estimator():  # an exact "estimator": every draw is the value
        return lambda rng: np.array([0.5, -1.0]) + 0.0 * rng.standard_normal()

    def inputs():
        return {k: v.copy() for k, v in catalogue.get_case(name).inputs.items()}

    pre = "refvi.crosscheck"
    return {
        f"{pre}.case.evaluate": E(
            case.evaluate,
            {
                "quantity": A(const("gaussian.kl_standard_normal"), "choice"),
                "inputs": A(inputs, "params"),
                "options": A(dict, "params"),
            },
        ),
        f"{pre}.catalogue.case_names": E(catalogue.case_names, {}),
        f"{pre}.catalogue.all_cases": E(catalogue.all_cases, {}),
        f"{pre}.catalogue.get_case": E(catalogue.get_case, {"name": CASE}),
        f"{pre}.compare.compare": E(
            compare.compare,
            {"fn": FN, "case": CASE, "rtol": A(const(1e-12), "float")},
        ),
        f"{pre}.schema.json_schema": E(schema.json_schema, {}),
        f"{pre}.stochastic.check_estimator": E(
            stochastic.check_estimator,
            {
                "estimator": A(estimator, "fn"),
                "exact": A(const(np.array([0.5, -1.0])), "array"),
                "n_samples": A(const(3), "int"),
                "rng": RNG,
                "false_failure_rate": A(const(1e-6), "float"),
                "power": A(const(0.9), "float"),
            },
        ),
        "refvi.testing.assert_matches": E(
            testing.assert_matches,
            {"fn": FN, "case": CASE, "rtol": A(const(1e-12), "float")},
            exc=(AssertionError,),
        ),
        "refvi.testing.assert_estimator": E(
            testing.assert_estimator,
            {
                "estimator": A(estimator, "fn"),
                "exact": A(const(np.array([0.5, -1.0])), "array"),
                "n_samples": A(const(3), "int"),
                "rng": RNG,
            },
            exc=(AssertionError,),
        ),
    }


def _inference_rows():
    """Rows of refvi.inference (empty while the package is absent)."""
    try:
        from refvi.inference import aggregate, encoder, estimators, vae
        from refvi.inference import variational_em as vem
    except ImportError:
        return {}
    E = Entry

    def enc(**kw):
        return encoder.LinearEncoder(
            np.array([[0.5, -0.5, 1.0], [1.0, 0.0, -0.5]]),
            np.array([0.25, -0.25]),
            **(kw or {"log_std": np.array([-0.5, 0.25])}),
        )

    def q_diag():
        return encoder.encode(enc(), _x_lg())

    def q_full():
        return encoder.encode(enc(L=_L2()), _x_lg())

    ENC = A(enc, "model")
    EPS = A(lambda: np.linspace(-1.5, 1.5, 4 * 6 * 2).reshape(4, 6, 2), "array")
    Q = A(q_diag, "record")
    e = {}
    pre = "refvi.inference"
    e[f"{pre}.encoder.LinearEncoder"] = [
        E(
            encoder.LinearEncoder,
            {
                "A": A(lambda: enc().A, "array", mismatch=EITHER),  # A fixes k and d
                "c": A(lambda: enc().c, "array"),
                "log_std": A(lambda: enc().log_std, "array"),
                "B": A(lambda: np.full((2, 3), 0.25), "array"),
            },
        ),
        E(
            encoder.LinearEncoder,
            {
                "A": A(lambda: enc().A, "array", mismatch=EITHER),
                "c": A(lambda: enc().c, "array"),
                "L": A(_L2, "chol"),
            },
        ),
    ]
    e[f"{pre}.encoder.check_encoder"] = E(encoder.check_encoder, {"encoder": ENC})
    e[f"{pre}.encoder.encode"] = E(encoder.encode, {"encoder": ENC, "x": X_LG})
    e[f"{pre}.encoder.encode_backward"] = E(
        encoder.encode_backward,
        {
            "encoder": ENC,
            "x": X_LG,
            "grads_q": A(
                lambda: {"m_q": np.ones((6, 2)), "log_std_q": np.ones((6, 2))}, "params"
            ),
        },
    )
    e[f"{pre}.encoder.exact_posterior_encoder"] = E(
        encoder.exact_posterior_encoder, {"model": LG}
    )
    e[f"{pre}.estimators.check_q"] = E(
        estimators.check_q, {"q": Q, "n": A(const(6), "int"), "k": A(const(2), "int")}
    )
    e[f"{pre}.estimators.elbo_analytic_and_grad"] = [
        E(
            estimators.elbo_analytic_and_grad,
            {"model": LG, "x": X_LG, "q": Q, "dout": DOUT_LG},
        ),
        E(
            estimators.elbo_analytic_and_grad,
            {"model": LG, "x": X_LG, "q": A(q_full, "record")},
        ),
    ]
    for name in (
        "elbo_reparam_and_grad",
        "elbo_path_derivative_and_grad",
        "elbo_score_and_grad",
        "iwae_and_grad",
    ):
        fn = getattr(estimators, name)
        e[f"{pre}.estimators.{name}"] = [
            E(fn, {"model": LG, "x": X_LG, "q": Q, "eps": EPS, "dout": DOUT_LG}),
            E(fn, {"model": LG, "x": X_LG, "q": A(q_full, "record"), "eps": EPS}),
        ]
    e[f"{pre}.vae.check_pair"] = E(vae.check_pair, {"encoder": ENC, "model": LG})
    e[f"{pre}.vae.elbo_and_grad"] = [
        E(
            vae.elbo_and_grad,
            {
                "encoder": ENC,
                "model": LG,
                "x": X_LG,
                "eps": EPS,
                "estimator": A(const("kl"), "choice"),
                "dout": DOUT_LG,
            },
        ),
        E(
            vae.elbo_and_grad,
            {
                "encoder": ENC,
                "model": LG,
                "x": X_LG,
                "estimator": A(const("analytic"), "choice"),
            },
        ),
    ]
    e[f"{pre}.vae.optimum"] = E(
        vae.optimum,
        {
            "x": X_LG_FREE,
            "k": A(const(1), "int"),
            "sigma2": A(const(0.5), "float", zero=RAISE),
        },
    )
    e[f"{pre}.vae.train"] = E(
        vae.train,
        {
            "encoder": ENC,
            "model": LG,
            "x": X_LG,
            "rng": RNG,
            "n_epochs": A(const(2), "int"),
            "lr": A(const(0.01), "float", zero=RAISE),
            "batch_size": A(const(3), "int"),
            "optimizer": A(const("adam"), "choice"),
            "estimator": A(const("kl"), "choice"),
            "n_samples": A(const(2), "int"),
            "noise": A(const("diag"), "choice"),
        },
    )
    e[f"{pre}.variational_em.mean_field_variances"] = E(
        vem.mean_field_variances, {"model": LG}
    )
    e[f"{pre}.variational_em.mean_field_stats"] = E(
        vem.mean_field_stats, {"model": LG, "stats": STATS}
    )
    PSI_FLOOR = A(const(1e-6), "float", zero=RAISE)
    em_args = {"x": X_LG, "model0": LG, "tol": TOL, "max_iter": MAX_ITER}
    em_args["psi_floor"] = PSI_FLOOR
    e[f"{pre}.variational_em.variational_em"] = E(
        vem.variational_em, {**em_args, "noise": A(const("diag"), "choice")}
    )
    e[f"{pre}.variational_em.em_fixed_loadings"] = E(
        vem.em_fixed_loadings, {**em_args, "e_step": A(const("mean_field"), "choice")}
    )
    e[f"{pre}.variational_em.m_step_fixed_loadings"] = E(
        vem.m_step_fixed_loadings,
        {
            "estats": ESTATS,
            "W": A(lambda: _lg().W, "array"),
            "psi_floor": PSI_FLOOR,
        },
    )
    MEAN_DATA = A(lambda: np.array([0.5, -0.5, 1.0]), "array")
    COV_DATA = A(lambda: np.diag([2.0, 1.0, 0.5]), "cov")
    for name in ("aggregate_gaussian", "surgery_gaussian"):
        e[f"{pre}.aggregate.{name}"] = E(
            getattr(aggregate, name),
            {"encoder": ENC, "mean_data": MEAN_DATA, "cov_data": COV_DATA},
        )
    e[f"{pre}.aggregate.log_aggregate_empirical"] = E(
        aggregate.log_aggregate_empirical, {"encoder": ENC, "x": X_LG, "z": Z_LG}
    )
    e[f"{pre}.aggregate.surgery_empirical_mc"] = E(
        aggregate.surgery_empirical_mc, {"encoder": ENC, "x": X_LG, "eps": EPS}
    )
    e[f"{pre}.aggregate.kl_aggregate_empirical_quad"] = E(
        aggregate.kl_aggregate_empirical_quad,
        {"encoder": ENC, "x": X_LG, "order": A(const(6), "int")},
    )
    return e


_TABLE = None


def entries():
    """name -> [Entry, ...] (one name may have several valid call patterns)."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _lazy()
    return _TABLE


# ---------------------------------------------------------------------------
# What must be covered: every public callable of every public module.

#: Public modules are refvi's modules outside these (the applications behind
#: ``refvi verify`` and ``refvi figures``, not library API).
NOT_API = ("refvi.checker", "refvi.figures", "refvi.cli", "refvi.__main__")

_RECORD = "record, validated where accepted"

#: Public names that are not entry points, with the reason.
EXEMPT = {
    # records returned by the library; validated where they are accepted
    "refvi.mixture_kl.KLBounds": "result record",
    "refvi.models.em.EMTrace": "result record",
    "refvi.models.mixture_em.MixtureEMTrace": "result record",
    "refvi.models.linear_gaussian.Posterior": _RECORD,
    "refvi.models.linear_gaussian_em.SufficientStats": _RECORD,
    "refvi.models.linear_gaussian_em.ExpectedStats": _RECORD,
    "refvi.models.mixture_prior.MixturePosterior": _RECORD,
    "refvi.verify.gradcheck.GradcheckResult": "result record",
    "refvi.verify.gradcheck.TaylorResult": "result record",
    "refvi.verify.montecarlo.MCEstimate": _RECORD,
    "refvi.verify.montecarlo.ZTest": "result record",
    "refvi.verify.quadrature.QuadResult": "result record",
    "refvi.inference.encoder.QParams": _RECORD,
    "refvi.inference.vae.Optimum": "result record",
    "refvi.crosscheck.case.Case": "record built by the catalogue or from_json",
    "refvi.crosscheck.compare.OutputReport": "result record",
    "refvi.crosscheck.compare.OutputReport.describe": "method of a result record",
    "refvi.crosscheck.compare.Report": "result record",
    "refvi.crosscheck.stochastic.EstimatorTest": "result record",
    "refvi.crosscheck.compare.to_numpy": "a converter: NaN passes through so "
    "compare reports it at its entry (tests/crosscheck/test_compare.py)",
    "refvi.crosscheck.catalogue.find_cases": "takes *patterns, each refused by "
    "name when it matches no case (tests/crosscheck/test_catalogue.py)",
    "refvi.crosscheck.schema.to_document": "takes Case records of the catalogue",
    "refvi.crosscheck.schema.to_json": "takes Case records of the catalogue",
    "refvi.crosscheck.schema.from_json": "parses a document; a malformed one is "
    "refused by name (tests/crosscheck/test_cases_json.py)",
    "refvi.inference.vae.TrainTrace": "result record",
    "refvi.inference.variational_em.VariationalEMTrace": "result record",
    "refvi.inference.aggregate.Surgery": "result record",
}


def public_modules():
    names = []
    for info in pkgutil.walk_packages(refvi.__path__, "refvi."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]) or info.name.startswith(NOT_API):
            continue
        names.append(info.name)
    return names


def _public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return [
        n
        for n in names
        if callable(getattr(module, n))
        and getattr(getattr(module, n), "__module__", None) == module.__name__
    ]


def public_entry_points():
    """Qualified names of every public function, class and public method."""
    out = []
    for mod_name in public_modules():
        module = importlib.import_module(mod_name)
        for n in _public_names(module):
            obj = getattr(module, n)
            if isinstance(obj, type) and issubclass(obj, Warning):
                continue
            out.append(f"{mod_name}.{n}")
            if isinstance(obj, type):
                for m, attr in vars(obj).items():
                    if m.startswith("_") or isinstance(attr, property):
                        continue
                    if inspect.isfunction(attr) or isinstance(
                        attr, (classmethod, staticmethod)
                    ):
                        out.append(f"{mod_name}.{n}.{m}")
    return out


# ---------------------------------------------------------------------------
# Running the matrix.


def _message_names(exc, pattern):
    return re.search(pattern, str(exc)) is not None


def _call(fn, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return fn(**kwargs)


def baseline(entry):
    """The valid call's result (raises if the table's example is not valid)."""
    kwargs = {name: arg.make() for name, arg in entry.args.items()}
    snap = _snapshot(kwargs)
    result = _call(entry.fn, kwargs)
    return result, snap


def cases(name, entry):
    """(arg name, kind, variant, bad value) for every case of one entry."""
    for arg_name, arg in entry.args.items():
        for kind in ROLE_KINDS[arg.role]:
            for variant, value in MUTATIONS[kind](arg.make(), arg.role):
                yield arg_name, kind, variant, value


def run_case(name, entry, reference, arg_name, kind, variant, value):
    arg = entry.args[arg_name]
    kwargs = {n: a.make() for n, a in entry.args.items()}
    original = kwargs[arg_name]
    kwargs[arg_name] = value
    changed = kind in MUST_WORK and not (
        isinstance(original, np.ndarray)
        and np.asarray(value).shape == original.shape
        and np.array_equal(np.asarray(value, dtype=float), original)
    )
    expect = _expectation(kind, arg, changed, arg_name in _optional(entry.fn))
    names = [arg_name]
    if kind in RELATIONAL or variant.endswith("d + 1"):
        names = list(entry.args)
    pattern = arg.name or "|".join(rf"\b{re.escape(n)}\b" for n in names)
    snap = _snapshot(kwargs)
    out = {"entry": name, "arg": arg_name, "kind": kind, "variant": variant}
    try:
        result = _call(entry.fn, kwargs)
    except (ValueError, TypeError) as exc:
        if _mutated(snap):
            return Outcome(**out, status="mutation", detail=str(exc))
        if expect == WORK:
            return Outcome(
                **out, status="refused", detail=f"{type(exc).__name__}: {exc}"
            )
        if not _message_names(exc, pattern):
            return Outcome(
                **out, status="unclear", detail=f"{type(exc).__name__}: {exc}"
            )
        return Outcome(**out, status="ok", detail=f"{type(exc).__name__}: {exc}")
    except entry.exc as exc:
        return Outcome(**out, status="ok", detail=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 -- counting what escapes is the point
        return Outcome(**out, status="crash", detail=f"{type(exc).__name__}: {exc}")
    if _mutated(snap):
        return Outcome(**out, status="mutation", detail="an input array changed")
    if expect == RAISE:
        return Outcome(
            **out, status="garbage", detail=f"accepted; returned {_short(result)}"
        )
    if expect == FLAG and getattr(result, "ok", False):
        return Outcome(**out, status="garbage", detail=f"verdict ok; {_short(result)}")
    if expect != FLAG and _has_nan(result):
        return Outcome(**out, status="garbage", detail=f"NaN in {_short(result)}")
    if expect == WORK and not _same(result, reference):
        return Outcome(**out, status="garbage", detail="differs from the valid call")
    return Outcome(**out, status="ok")


def _optional(fn):
    """Names of the parameters of ``fn`` whose default is None."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return set()
    return {n for n, p in params.items() if p.default is None}


def _short(result):
    text = repr(result).replace("\n", " ")
    return text if len(text) < 160 else text[:157] + "..."


def run_entry(name, table=None):
    """Outcomes of every case of every valid call pattern of ``name``."""
    outcomes = []
    for i, entry in enumerate((table or entries())[name]):
        label = name if i == 0 else f"{name}#{i}"
        reference, snap = baseline(entry)
        if _has_nan(reference) or _mutated(snap):
            outcomes.append(Outcome(label, "-", "valid", "-", "garbage", "valid call"))
        for arg_name, kind, variant, value in cases(name, entry):
            outcomes.append(
                run_case(label, entry, reference, arg_name, kind, variant, value)
            )
    return outcomes


def run_matrix():
    out = []
    for name in entries():
        out += run_entry(name)
    return out


def summary(outcomes):
    status = Counter(o.status for o in outcomes)
    entry_names = {o.entry.split("#")[0] for o in outcomes}
    kinds = {o.kind for o in outcomes}
    lines = [
        f"calls {len(outcomes)}, entry points {len(entry_names)}, "
        f"call patterns {len({o.entry for o in outcomes})}, kinds {len(kinds)}",
        "  "
        + ", ".join(
            f"{k} {status.get(k, 0)}"
            for k in ("ok", "crash", "garbage", "unclear", "refused", "mutation")
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    results = run_matrix()
    print(summary(results))
    verbose = "-v" in sys.argv
    for o in results:
        if o.status != "ok" and (
            verbose or o.status in ("crash", "garbage", "mutation")
        ):
            print(
                f"{o.status:8s} {o.entry} {o.arg} {o.kind} [{o.variant}]: "
                f"{o.detail[:200]}"
            )
    print(summary(results))
    print("kinds:", sorted({o.kind for o in results}))
