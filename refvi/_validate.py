"""Input validation shared by every public entry point.

Public functions call these; private kernels (names starting with ``_``) do no
argument checking. Every error names the argument, what was expected and what
was given. Arrays are promoted to float64 and never written to: when the input
already is a float64 array it is returned as is, so callers must not mutate.
"""

import numpy as np
from scipy import linalg

#: Largest magnitude of an array entry: squares and products of two entries
#: (Mahalanobis terms, outer products, second moments) then stay below 1e300,
#: far from float64's 1.8e308. Finite entries beyond it are refused by name
#: rather than turned into inf - inf = NaN several steps later.
MAX_ABS = 1e150


def as_float_array(a, name, ndim=None, shape=None, allow_empty=False):
    """Return ``a`` as a finite float64 array, checking its dimensions.

    Every entry must be finite with magnitude at most :data:`MAX_ABS`.

    Parameters
    ----------
    a : array_like
        The input. float32 and integer arrays are promoted to float64; booleans,
        complex numbers and objects are refused with TypeError.
    name : str
        The argument's name, used in error messages.
    ndim : int, optional
        Required number of dimensions.
    shape : tuple, optional
        Required shape; an entry ``None`` matches any length.
    allow_empty : bool
        Whether a zero-sized array is acceptable (default: it is not).
    """
    arr = np.asarray(a)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s); got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(
            want is not None and want != got
            for want, got in zip(shape, arr.shape, strict=True)
        ):
            want_str = "(" + ", ".join("*" if s is None else str(s) for s in shape)
            want_str += ",)" if len(shape) == 1 else ")"
            raise ValueError(f"{name} must have shape {want_str}; got {arr.shape}")
    # a sum of squares <= MAX_ABS^2 holds every |entry| <= MAX_ABS (NaN and inf
    # propagate into it); only a larger or non-finite sum, which many finite
    # entries can also give, needs the entry-by-entry check
    flat = arr.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.dot(flat, flat)
    if not total <= MAX_ABS * MAX_ABS:
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{name} contains NaN or inf ({bad} non-finite entries)")
        largest = float(np.max(np.abs(arr)))
        if largest > MAX_ABS:
            raise ValueError(
                f"{name} has an entry of magnitude {largest:.3g}; entries must be at "
                f"most {MAX_ABS:g} in magnitude (their squares must stay finite)"
            )
    return arr


def as_datum(x, d, name="x"):
    """Return one datum ``x`` as a finite float64 vector of shape (d,)."""
    return as_float_array(x, name, shape=(d,))


def as_latent(z, k, name="z"):
    """Return latent points ``z`` as a finite float64 array of shape (m, k)."""
    return as_float_array(z, name, ndim=2, shape=(None, k))


def as_data(x, d=None, name="x"):
    """Return data ``x`` as a finite float64 array of shape (n, d) with n >= 1."""
    return as_float_array(x, name, ndim=2, shape=(None, d))


def _as_square(a, name, d, n, batch):
    """``a`` as float64 of shape (d, d), (n, d, d) or, with ``batch``, (..., d, d)."""
    if batch:
        a = as_float_array(a, name)
        if a.ndim < 2:
            raise ValueError(f"{name} must have shape (..., d, d); got {a.shape}")
        if d is not None and a.shape[-2:] != (d, d):
            raise ValueError(f"{name} must have shape (..., {d}, {d}); got {a.shape}")
    elif n is None:
        a = as_float_array(a, name, ndim=2, shape=(d, d))
    else:
        a = as_float_array(a, name, ndim=3, shape=(n, d, d))
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name} must be square; got shape {a.shape}")
    return a


def check_lower_cholesky(L, name, d=None, n=None, batch=False):
    """Return ``L`` as float64 after checking it is a valid Cholesky factor.

    A valid factor is square, lower triangular (every entry above the diagonal
    exactly zero) and has a strictly positive diagonal. With ``n`` given,
    ``L`` is a stack of ``n`` factors, shape (n, d, d); with ``batch`` it has
    any leading axes, shape (..., d, d); each factor is checked so.
    """
    L = _as_square(L, name, d, n, batch)
    # an entry above the diagonal is nonzero in some factor exactly when it is
    # nonzero in the logical or over the stack: one contiguous pass
    upper = np.triu(np.ones(L.shape[-2:], dtype=bool), k=1)
    if np.any(np.any(L.reshape((-1,) + L.shape[-2:]), axis=0)[upper]):
        upper = np.triu(L, k=1)
        raise ValueError(
            f"{name} must be lower triangular; largest entry above the diagonal "
            f"is {np.max(np.abs(upper)):.3g}"
        )
    diag = np.diagonal(L, axis1=-2, axis2=-1)
    if np.any(diag <= 0):
        raise ValueError(
            f"{name} must have a positive diagonal; got min {diag.min():.3g}"
        )
    return L


def cholesky_of_spd(Sigma, name, d=None, rtol=1e-10, batch=False):
    """Return the lower Cholesky factor of a symmetric positive definite matrix.

    With ``batch``, ``Sigma`` has shape (..., d, d) and each matrix is
    factorised. Symmetry is checked to ``rtol`` relative to the largest entry;
    a failed factorisation is re-raised as ValueError naming the matrix.
    """
    Sigma = _as_square(Sigma, name, d, None, batch)
    scale = np.max(np.abs(Sigma))
    asym = np.max(np.abs(Sigma - np.swapaxes(Sigma, -1, -2)))
    if asym > rtol * scale:
        raise ValueError(
            f"{name} must be symmetric; largest |{name} - {name}^T| is {asym:.3g}"
        )
    try:
        if Sigma.ndim > 2:
            return np.linalg.cholesky(Sigma)
        return linalg.cholesky(Sigma, lower=True)
    except linalg.LinAlgError:
        eig_min = np.linalg.eigvalsh(Sigma).min()
        raise ValueError(
            f"{name} must be positive definite; its smallest eigenvalue is "
            f"{eig_min:.3g}"
        ) from None


def check_positive(a, name, shape=None):
    """Return ``a`` as float64 after checking every entry is > 0."""
    arr = as_float_array(a, name, shape=shape)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be positive; got min {arr.min():.3g}")
    return arr


def check_rng(rng, name="rng"):
    """Check that ``rng`` is a numpy Generator (refvi has no global RNG state)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name} must be a numpy.random.Generator (e.g. "
            f"numpy.random.default_rng(0)); got {type(rng).__name__}"
        )
    return rng


def check_int(value, name, minimum=None):
    """Return ``value`` as int after checking it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


#: Mixing weights must sum to one within this absolute tolerance.
WEIGHT_SUM_TOL = 1e-10


def check_weights(weights, name="weights"):
    """Return mixing weights as float64 after checking they form a distribution.

    Each weight must be >= 0 (a zero weight is allowed) and their sum must be
    one within ``WEIGHT_SUM_TOL``.
    """
    weights = as_float_array(weights, name, ndim=1)
    if np.any(weights < 0):
        raise ValueError(f"{name} must be non-negative; got min {weights.min():.3g}")
    total = weights.sum()
    if abs(total - 1.0) > WEIGHT_SUM_TOL:
        raise ValueError(
            f"{name} must sum to one (within {WEIGHT_SUM_TOL:g}); got sum {total!r}"
        )
    return weights


def check_dout(dout, shape):
    """Upstream gradient of a per-datum value: ones by default, else of ``shape``.

    See CONTRIBUTING.md ("Gradients"): a value of shape ``shape`` takes an
    optional ``dout`` of the same shape, and its gradients are those of
    ``sum(dout * value)``.
    """
    if dout is None:
        return np.ones(shape)
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    return as_float_array(dout, "dout", shape=shape, allow_empty=True)


def read_only_copy(arr):
    """A private float64 copy of ``arr`` that cannot be written to.

    Frozen parameter objects store these, so neither the caller's array nor
    the object's own can change after validation.
    """
    out = np.array(arr, dtype=np.float64, order="C", copy=True)
    out.setflags(write=False)
    return out


def check_instance(value, cls, name):
    """Return ``value`` after checking it is an instance of ``cls`` (TypeError)."""
    if not isinstance(value, cls):
        article = "an" if cls.__name__[0] in "AEIOU" else "a"
        raise TypeError(
            f"{name} must be {article} {cls.__name__}; got {type(value).__name__}"
        )
    return value


def check_float(value, name, minimum=None):
    """Return ``value`` as a finite Python float, >= ``minimum`` when given.

    A string, None, a boolean or an array of more than one entry is refused
    with TypeError; NaN, an infinity or a value below ``minimum`` with
    ValueError.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        if not (isinstance(value, np.ndarray) and value.size == 1):
            raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    value = float(np.asarray(value, dtype=float).reshape(()))
    bound = "" if minimum is None else f" >= {minimum:g}"
    if not np.isfinite(value) or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be a finite number{bound}; got {value!r}")
    return value


def check_callable(f, name):
    """Return ``f`` after checking it can be called (TypeError naming it)."""
    if not callable(f):
        raise TypeError(f"{name} must be callable; got {type(f).__name__}")
    return f


def check_record(value, cls, name, fields, sizes=None):
    """A NamedTuple ``cls`` with its array fields checked and promoted to float64.

    ``fields`` maps each field to check to its shape, a tuple of ints and
    symbols (strings, e.g. ``("d", "k")``), or to ``"count"`` for an integer
    >= 1. A symbol takes its length from ``sizes`` when given there, else from
    the first field that has it, and every later field must agree. Errors name
    the field as ``name.field``. Returns ``value._replace(...)`` with the
    checked arrays (the caller's record is not changed).
    """
    check_instance(value, cls, name)
    sizes = dict(sizes or {})
    checked = {}
    for field, spec in fields.items():
        label = f"{name}.{field}"
        v = getattr(value, field)
        if spec == "count":
            checked[field] = check_int(v, label, minimum=1)
            continue
        arr = as_float_array(v, label, ndim=len(spec))
        for axis, sym in enumerate(spec):
            want = (
                sizes.setdefault(sym, arr.shape[axis]) if isinstance(sym, str) else sym
            )
            if arr.shape[axis] != want:
                shape = ", ".join(str(sizes.get(s, s)) for s in spec)
                raise ValueError(
                    f"{label} must have shape ({shape}{',' * (len(spec) == 1)}); "
                    f"got {arr.shape}"
                )
        checked[field] = arr
    return value._replace(**checked)
