"""Gradient checks over dicts of named arrays, without autodiff.

Two independent checks of a handwritten gradient ``f_and_grad(params) ->
(value, grads)``:

* :func:`gradcheck` compares every entry with central differences refined by
  Richardson extrapolation (:func:`numerical_gradient`) and reports the worst
  entry of the worst parameter;
* :func:`taylor_test` needs no step size: along random directions ``v`` the
  first-order Taylor remainder ``|f(p + h v) - f(p) - h <g, v>|`` shrinks like
  ``h^2`` when ``g`` is the gradient and only like ``h`` when it is not.

Lower-triangular parameters
---------------------------
A Cholesky factor is parameterised by its lower triangle (CONTRIBUTING.md):
only the lower triangle is perturbed, its numerical gradient is zero above the
diagonal, and an analytic gradient with a non-zero entry there fails the
check. Which parameters are lower triangular is given by ``lower_triangular``
(an iterable of names); by default (``None``) a parameter is lower triangular
when its name is ``"L"``, starts with ``"L_"`` or ends with ``"_L"`` (``L``,
``L_q``, ``L_Sigma``, ``q_L``) *and* its array has at least two dimensions with
the last two equal, ``(..., k, k)`` (a batch of factors uses its last two axes).

Vector-valued functions are checked through a scalar: with a random upstream
gradient ``dout`` the wrapper returns ``sum(dout * value)`` and the gradients
computed with that ``dout`` (CONTRIBUTING.md, "Gradients").
"""

from typing import NamedTuple

import numpy as np

from refvi._validate import (
    as_float_array,
    check_callable,
    check_int,
    check_positive,
    check_rng,
)

__all__ = [
    "DEFAULT_STEP",
    "GradcheckResult",
    "TaylorResult",
    "numerical_gradient",
    "gradcheck",
    "assert_gradcheck",
    "taylor_test",
]

#: Default relative step of the central differences: for the Richardson
#: combination of steps h and h/2 the truncation error is O(h^4) ~ 1e-12 and
#: the round-off error ~ 3 eps |f| / h ~ 1e-12 |f| (per unit of scale).
DEFAULT_STEP = 1e-3


class GradcheckResult(NamedTuple):
    """Outcome of :func:`gradcheck`.

    Attributes
    ----------
    ok : bool
        Whether every parameter's relative error is <= ``rtol`` and the
        analytic gradients have the right keys, shapes and structure.
    errors : dict of str to float
        Maximum relative error per parameter (``inf`` for a parameter whose
        analytic gradient is missing or has the wrong shape or structure).
    message : str
        One line naming the worst parameter, the index of its worst entry and
        the analytic and numerical values there (or the structural problem).
    """

    ok: bool
    errors: dict
    message: str


class TaylorResult(NamedTuple):
    """Outcome of :func:`taylor_test`.

    Attributes
    ----------
    orders : ndarray of shape (n_directions,)
        Fitted convergence order of the Taylor remainder along each direction
        (``inf`` when the remainder is at round-off level for every step,
        ``nan`` when a small step's value is not finite).
    ok : bool
        Whether every order is >= ``min_order`` (never for a ``nan`` order).
    """

    orders: np.ndarray
    ok: bool


def _lower_triangular_names(params, lower_triangular):
    """Names of the parameters treated as lower-triangular factors."""

    def square(arr):
        return arr.ndim >= 2 and arr.shape[-1] == arr.shape[-2]

    if lower_triangular is None:
        return {
            name
            for name, arr in params.items()
            if (name == "L" or name.startswith("L_") or name.endswith("_L"))
            and square(arr)
        }
    names = {lower_triangular} if isinstance(lower_triangular, str) else None
    names = names if names is not None else set(lower_triangular)
    for name in names:
        if name not in params:
            raise ValueError(
                f"lower_triangular names {name!r}, which is not in params "
                f"(keys: {sorted(params)})"
            )
        if not square(params[name]):
            raise ValueError(
                f"lower_triangular names {name!r}, but params[{name!r}] has shape "
                f"{params[name].shape}; a factor needs shape (..., k, k)"
            )
    return names


def _free_mask(arr, is_lower):
    """Boolean mask of the free entries: all, or the lower triangle(s)."""
    if not is_lower:
        return np.ones(arr.shape, dtype=bool)
    k = arr.shape[-1]
    return np.broadcast_to(np.tril(np.ones((k, k), dtype=bool)), arr.shape)


def _as_params(params):
    """Validated float64 copies of the named arrays (the caller's are untouched)."""
    if not isinstance(params, dict) or not params:
        raise TypeError(
            "params must be a non-empty dict of name -> array; "
            f"got {type(params).__name__}"
        )
    return {
        name: as_float_array(value, f"params[{name!r}]").copy()
        for name, value in params.items()
    }


def _scalar(value, what, finite=False):
    """``value`` as a Python float, refusing arrays with more than one entry.

    With ``finite``, a NaN or infinite value is refused too (ValueError naming
    ``what``): no derivative can be taken there.
    """
    arr = np.asarray(value)
    if arr.size != 1:
        raise ValueError(
            f"{what} must return a scalar; got shape {arr.shape} (for a "
            "vector-valued function check sum(dout * value) with a random dout)"
        )
    value = float(arr.reshape(()))
    if finite and not np.isfinite(value):
        raise ValueError(
            f"{what} returned {value!r}; it must be finite at the point and at "
            "the points of the finite differences"
        )
    return value


def _steps(arr, step):
    """Per-entry steps ``h_i = step * max(|x_i|, 0.1 max_j |x_j|)`` (1 if that is 0)."""
    scale = np.maximum(np.abs(arr), 0.1 * np.max(np.abs(arr)))
    return step * np.where(scale > 0, scale, 1.0)


def numerical_gradient(f, params, *, lower_triangular=None, step=None):
    """Gradient of a scalar function of named arrays by Richardson-refined differences.

    For each free entry ``x_i`` of each parameter, with central differences
    ``D(h) = (f(x + h e_i) - f(x - h e_i)) / (2 h)``, returns the Richardson
    combination ``(4 D(h/2) - D(h)) / 3``, whose truncation error is O(h^4).
    The step is ``h_i = step * max(|x_i|, 0.1 * max_j |x_j|)`` over the entries
    ``x_j`` of the same parameter (``step`` alone if the parameter is all
    zero), rounded so that ``x_i + h_i`` is exact.

    Parameters
    ----------
    f : callable
        ``f(params) -> float``. Called with fresh copies of the arrays; the
        caller's arrays are never perturbed.
    params : dict of str to array_like
        The point at which to differentiate.
    lower_triangular : iterable of str, optional
        Names of lower-triangular factors (default: the naming rule in the
        module docstring). Only their lower triangles are perturbed; their
        gradient is 0 above the diagonal.
    step : float or dict of str to float, optional
        Relative step, one for all parameters or one per name
        (default ``DEFAULT_STEP`` = 1e-3).

    Returns
    -------
    dict of str to ndarray
        The numerical gradient, each entry with its parameter's shape.
    """
    check_callable(f, "f")
    params = _as_params(params)
    lower = _lower_triangular_names(params, lower_triangular)
    steps = step if isinstance(step, dict) else dict.fromkeys(params, step)
    grads = {}
    for name, arr in params.items():
        rel = steps.get(name)
        rel = DEFAULT_STEP if rel is None else float(check_positive(rel, "step"))
        h_all = _steps(arr, rel)
        grad = np.zeros(arr.shape)

        def f_at(idx, x_new, name=name, arr=arr):
            moved = arr.copy()
            moved[idx] = x_new
            trial = {key: val.copy() for key, val in params.items()}
            trial[name] = moved
            return _scalar(f(trial), "f", finite=True)

        for idx in map(tuple, np.argwhere(_free_mask(arr, name in lower))):
            x = arr[idx]
            h = (x + h_all[idx]) - x  # an exactly representable step
            d_h = (f_at(idx, x + h) - f_at(idx, x - h)) / (2 * h)
            d_h2 = (f_at(idx, x + h / 2) - f_at(idx, x - h / 2)) / h
            grad[idx] = (4 * d_h2 - d_h) / 3
        grads[name] = grad
    return grads


def _relative_errors(analytic, numeric):
    """Per-parameter max relative error and the index of the worst entry.

    ``err_P = max_i |a_i - n_i| / max(||n_P||_inf, ||a_P||_inf, floor)`` with
    ``floor = 1e-3 * max_Q ||n_Q||_inf``, so a block whose gradient is exactly
    zero or tiny is measured against the overall gradient scale rather than
    against its own round-off.
    """
    floor = 1e-3 * max(np.max(np.abs(n)) for n in numeric.values())
    errors, worst = {}, {}
    for name, n in numeric.items():
        a = analytic[name]
        diff = np.abs(a - n)
        denom = max(np.max(np.abs(n)), np.max(np.abs(a)), floor)
        idx = np.unravel_index(np.argmax(diff), diff.shape)
        worst[name] = tuple(int(i) for i in idx)
        if denom > 0:
            errors[name] = float(diff[idx] / denom)
        else:
            errors[name] = 0.0 if diff[idx] == 0 else float("inf")
    return errors, worst


def _structure_problem(grads, params, lower):
    """Name and text of the first structural defect of ``grads``, or None."""
    if not isinstance(grads, dict):
        return None, f"grads must be a dict; got {type(grads).__name__}"
    for name, arr in params.items():
        if name not in grads:
            return name, f"grads is missing {name!r} (keys: {sorted(grads)})"
        g = np.asarray(grads[name], dtype=float)
        if g.shape != arr.shape:
            return name, (
                f"grads[{name!r}] has shape {g.shape}; params[{name!r}] has "
                f"shape {arr.shape}"
            )
        if not np.all(np.isfinite(g)):
            return name, f"grads[{name!r}] contains NaN or inf"
        if name in lower:
            upper = np.where(_free_mask(arr, True), 0.0, np.abs(g))
            if np.any(upper != 0):
                idx = tuple(int(i) for i in np.unravel_index(np.argmax(upper), g.shape))
                return name, (
                    f"grads[{name!r}] is lower triangular but is non-zero above "
                    f"the diagonal: entry {idx} = {g[idx]:.6g}"
                )
    return None, None


def gradcheck(f_and_grad, params, *, rtol=1e-7, lower_triangular=None, step=None):
    """Compare an analytic gradient with :func:`numerical_gradient`.

    The relative error of parameter ``P`` is

        err_P = max_i |a_i - n_i| / max(||n_P||_inf, ||a_P||_inf, floor),
        floor = 1e-3 * max_Q ||n_Q||_inf,

    with ``a`` analytic and ``n`` numerical: tight (relative to the block's own
    scale) for an ordinary block, and not failed by round-off when a block of
    the gradient is exactly zero or tiny compared with the others.

    Parameters
    ----------
    f_and_grad : callable
        ``f_and_grad(params) -> (value, grads)`` with a scalar ``value`` and
        ``grads`` a dict holding, for every key of ``params``, an array of that
        parameter's shape (extra keys are ignored).
    params : dict of str to array_like
        The point at which to check; never modified.
    rtol : float
        Largest acceptable relative error (default 1e-7).
    lower_triangular, step
        As in :func:`numerical_gradient`.

    Returns
    -------
    GradcheckResult
        ``ok``, per-parameter ``errors`` and a ``message`` naming the worst
        entry. A missing key, a wrong shape, a non-finite gradient, a non-zero
        entry above the diagonal of a factor's gradient, or a ``f_and_grad``
        that modifies its input also gives ``ok=False`` with a message.
    """
    check_callable(f_and_grad, "f_and_grad")
    params = _as_params(params)
    rtol = float(check_positive(rtol, "rtol"))
    lower = _lower_triangular_names(params, lower_triangular)
    trial = {name: arr.copy() for name, arr in params.items()}
    f0, grads = f_and_grad(trial)
    _scalar(f0, "f_and_grad", finite=True)
    for name, arr in params.items():
        if not np.array_equal(trial[name], arr):
            msg = f"gradcheck failed: f_and_grad modified its input params[{name!r}]"
            return GradcheckResult(False, {name: float("inf")}, msg)
    bad_name, problem = _structure_problem(grads, params, lower)
    if problem is not None:
        errors = {bad_name: float("inf")} if bad_name is not None else {}
        return GradcheckResult(False, errors, f"gradcheck failed: {problem}")

    analytic = {name: np.asarray(grads[name], dtype=float) for name in params}
    numeric = numerical_gradient(
        lambda p: f_and_grad(p)[0], params, lower_triangular=lower, step=step
    )
    errors, worst = _relative_errors(analytic, numeric)
    name = max(errors, key=errors.get)
    idx = worst[name]
    ok = all(err <= rtol for err in errors.values())
    verdict = "passed" if ok else "failed"
    message = (
        f"gradcheck {verdict}: worst parameter {name!r} at index {idx}: analytic "
        f"{analytic[name][idx]:.17g}, numerical {numeric[name][idx]:.17g}, "
        f"relative error {errors[name]:.3g} (rtol {rtol:.3g}); all errors: "
        + ", ".join(f"{key}={err:.2g}" for key, err in errors.items())
    )
    return GradcheckResult(ok, errors, message)


def assert_gradcheck(f_and_grad, params, **kw):
    """Run :func:`gradcheck` and raise ``AssertionError(result.message)`` on failure.

    Keyword arguments are passed to :func:`gradcheck`. Returns the result.
    """
    result = gradcheck(f_and_grad, params, **kw)
    if not result.ok:
        raise AssertionError(result.message)
    return result


def _fitted_order(h, r, floor, n_fit):
    """Slope of log r vs log h over the smallest steps still above ``floor``.

    Steps ``h`` decrease. Leading non-finite remainders (a step that leaves the
    function's domain) are skipped; the window ends before the first remainder
    that is <= ``floor`` (round-off) and holds its last ``n_fit`` points.
    """
    start = 0
    while start < len(r) and not np.isfinite(r[start]):
        start += 1
    stop = start
    while stop < len(r) and np.isfinite(r[stop]) and r[stop] > floor:
        stop += 1
    if stop < len(r) and not np.isfinite(r[stop]):
        return np.nan  # non-finite at a small step: no order can be claimed
    if start == len(r):
        return np.nan  # every step non-finite
    if stop - start < 2:
        return np.inf  # remainder at round-off already: no first-order error seen
    lo = max(start, stop - n_fit)
    return float(np.polyfit(np.log(h[lo:stop]), np.log(r[lo:stop]), 1)[0])


def taylor_test(
    f_and_grad,
    params,
    rng,
    *,
    n_directions=3,
    lower_triangular=None,
    h0=0.125,
    n_steps=24,
    n_fit=4,
    noise=1e-10,
    min_order=1.8,
):
    """Step-size-free gradient check by the order of the Taylor remainder.

    Along a random direction ``v`` the remainder

        r(h) = |f(p + h v) - f(p) - h <g, v>|

    is O(h^2) when ``g`` is the gradient of ``f`` at ``p`` and only O(h) when
    ``<g, v>`` is wrong. For steps ``h = h0 * 2^-k``, ``k = 0..n_steps-1``, the
    order is the least-squares slope of ``log r`` against ``log h`` over the
    ``n_fit`` smallest steps whose remainder is still above the round-off
    level ``noise * max(|f(p)|, |f(p + h0 v)|)`` (steps giving a non-finite
    value at the large end are skipped). The order is ``inf`` when no two
    steps clear that level, i.e. the linear model is exact to round-off, and
    ``nan`` (so ``ok`` is False) when the value at a small step is NaN or
    infinite (a non-finite value or gradient at ``p`` is a ValueError).

    Directions are standard normal entries from ``rng``, scaled per parameter
    by ``max_i |p_i|`` (1 for an all-zero parameter) and zero above the
    diagonal of lower-triangular factors.

    Parameters
    ----------
    f_and_grad : callable
        ``f_and_grad(params) -> (value, grads)`` as in :func:`gradcheck`.
    params : dict of str to array_like
        The point at which to check; never modified.
    rng : numpy.random.Generator
        Source of the directions.
    n_directions : int
        Number of random directions (default 3).
    lower_triangular : iterable of str, optional
        As in :func:`numerical_gradient`.
    h0, n_steps, n_fit, noise
        Largest step, number of halvings, fit window and round-off level.
    min_order : float
        ``ok`` when every order is >= ``min_order`` (default 1.8: a correct
        gradient gives 2, a wrong one 1).

    Returns
    -------
    TaylorResult
        ``orders`` (one per direction) and ``ok``.
    """
    check_callable(f_and_grad, "f_and_grad")
    params = _as_params(params)
    check_rng(rng)
    n_directions = check_int(n_directions, "n_directions", minimum=1)
    lower = _lower_triangular_names(params, lower_triangular)
    f0, grads = f_and_grad({name: arr.copy() for name, arr in params.items()})
    f0 = _scalar(f0, "f_and_grad", finite=True)
    _, problem = _structure_problem(grads, params, lower)
    if problem is not None:
        raise ValueError(f"taylor_test: {problem}")
    h = h0 * 2.0 ** -np.arange(n_steps)
    orders = np.empty(n_directions)
    for j in range(n_directions):
        v = {}
        for name, arr in params.items():
            scale = np.max(np.abs(arr))
            z = rng.standard_normal(arr.shape) * (scale if scale > 0 else 1.0)
            v[name] = np.where(_free_mask(arr, name in lower), z, 0.0)
        slope = sum(float(np.sum(grads[name] * v[name])) for name in params)
        f_h = np.array(
            [
                _scalar(
                    f_and_grad({n: a + hk * v[n] for n, a in params.items()})[0],
                    "f_and_grad",
                )
                for hk in h
            ]
        )
        with np.errstate(invalid="ignore"):
            r = np.abs(f_h - f0 - h * slope)
        scale_f = max(abs(f0), np.max(np.abs(f_h[np.isfinite(f_h)]), initial=0.0))
        orders[j] = _fitted_order(h, r, noise * scale_f, n_fit)
    return TaylorResult(orders, bool(np.all(orders >= min_order)))
