"""Compare a user's implementation with a reference case, output by output.

:func:`compare` calls the user's callable with the case's inputs and options
by keyword, converts what it returns to float64 arrays (numpy arrays, lists,
or anything with ``__array__`` or ``.numpy()``: PyTorch, JAX and TensorFlow
tensors), and reports for each output the largest absolute error, the
normwise relative error ``max |got - ref| / max |ref|`` that decides pass or
fail at the case's tolerance, the largest entrywise relative error, and the
worst entry with its index.
"""

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from refvi._validate import check_callable, check_float, check_positive
from refvi.crosscheck.case import Case
from refvi.crosscheck.catalogue import get_case

__all__ = ["OutputReport", "Report", "compare", "to_numpy"]


class OutputReport(NamedTuple):
    """How one output of the user's callable compares with the reference.

    Attributes
    ----------
    name : str
    max_abs_error : float
        max |got - ref| over the entries (inf when ``got`` has a NaN).
    rel_error : float
        Normwise relative error ``max_abs_error / max |ref|`` (``max_abs_error``
        when ``ref`` is all zeros): the number compared with ``rtol``.
    max_entry_rel_error : float
        max |got - ref| / |ref| over the entries with ref != 0.
    worst_index : tuple of int
        Index of the entry with the largest |got - ref|.
    got, ref : float
        That entry in the user's output and in the reference.
    rtol : float
    passed : bool
    """

    name: str
    max_abs_error: float
    rel_error: float
    max_entry_rel_error: float
    worst_index: tuple
    got: float
    ref: float
    rtol: float
    passed: bool

    def describe(self, case_name):
        """One line naming the case, the output and its worst entry."""
        verdict = "ok" if self.passed else "FAILS"
        return (
            f"{case_name}: output {self.name!r} {verdict}: worst entry "
            f"{list(self.worst_index)}: got {self.got!r}, expected {self.ref!r}; "
            f"max abs error {self.max_abs_error:.3g}, relative error "
            f"{self.rel_error:.3g} (tolerance {self.rtol:g})"
        )


class Report(NamedTuple):
    """The comparison of one callable with one case.

    Attributes
    ----------
    case : str
        The case's name.
    outputs : tuple of OutputReport
    passed : bool
        Whether every compared output passed.
    """

    case: str
    outputs: tuple
    passed: bool

    @property
    def failures(self):
        """The outputs that failed."""
        return tuple(o for o in self.outputs if not o.passed)

    def __str__(self):
        return "\n".join(o.describe(self.case) for o in self.outputs)


def to_numpy(value, name="value"):
    """``value`` as a float64 ndarray: numpy arrays and lists, anything with
    ``__array__``, and tensors with ``.numpy()`` (detached from autograd and
    moved to the CPU first when they have ``detach`` / ``cpu``)."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "cpu") and not isinstance(value, np.ndarray):
        value = value.cpu()
    if callable(getattr(value, "numpy", None)):
        value = value.numpy()
    if np.iscomplexobj(value):
        raise TypeError(f"{name} must be real; got a complex array")
    try:
        return np.array(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be an array (numpy, list, or a tensor with __array__ or "
            f".numpy()); got {type(value).__name__}: {err}"
        ) from None


def _as_case(case):
    if isinstance(case, str):
        return get_case(case)
    if not isinstance(case, Case):
        raise TypeError(
            f"case must be a Case or a case name; got {type(case).__name__}"
        )
    return case


def _named_results(result, names, case_name):
    """The callable's return value as {output name: raw value}."""
    if isinstance(result, Mapping):
        missing = [n for n in names if n not in result]
        if missing:
            raise ValueError(
                f"{case_name}: fn's result has no output {missing[0]!r} "
                f"(expected outputs {list(names)}; got keys {list(result)})"
            )
        return {n: result[n] for n in names}
    if isinstance(result, tuple | list) and len(names) > 1:
        if len(result) != len(names):
            raise ValueError(
                f"{case_name}: fn returned {len(result)} values; expected "
                f"{len(names)}, the outputs {list(names)} in that order"
            )
        return dict(zip(names, result, strict=True))
    if len(names) != 1:
        raise ValueError(
            f"{case_name}: fn returned one {type(result).__name__}; "
            f"expected a dict (or tuple) of the outputs {list(names)} - pass "
            "outputs=[...] to compare fewer"
        )
    return {names[0]: result}


def _compare_output(name, got, ref, rtol):
    with np.errstate(invalid="ignore"):
        diff = np.abs(got - ref)
    diff = np.where(np.isnan(diff), np.inf, diff)
    flat = int(np.argmax(diff)) if diff.size else 0
    index = tuple(int(i) for i in np.unravel_index(flat, ref.shape))
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    rel = max_abs / scale if scale > 0 else max_abs
    nonzero = ref != 0
    entry_rel = 0.0
    if nonzero.any():
        entry_rel = float(np.max(diff[nonzero] / np.abs(ref[nonzero])))
    return OutputReport(
        name=name,
        max_abs_error=max_abs,
        rel_error=rel,
        max_entry_rel_error=entry_rel,
        worst_index=index,
        got=float(got[index]) if got.size else float("nan"),
        ref=float(ref[index]) if ref.size else float("nan"),
        rtol=rtol,
        passed=bool(rel <= rtol),
    )


def compare(fn, case, *, outputs=None, convert=None, rtol=None):
    """Call ``fn(**case.inputs, **case.options)``; compare its outputs with the case's.

    Parameters
    ----------
    fn : callable
        Takes the case's inputs and options by keyword and returns a dict of
        its outputs (a tuple in the order of ``outputs``, or a single array
        when one output is compared).
    case : Case or str
        A case (``refvi.crosscheck.get_case``, ``from_json``) or its name.
    outputs : sequence of str, optional
        The outputs to compare (default: all of the case's).
    convert : callable, optional
        Applied to each input array before the call (e.g. ``torch.from_numpy``).
        Without it ``fn`` receives fresh numpy copies.
    rtol : float, optional
        A tolerance for every output instead of the case's own.

    Returns
    -------
    Report

    Raises
    ------
    ValueError
        When ``fn`` does not return a requested output, or returns one of
        another shape (the message names the case and the output).
    """
    fn = check_callable(fn, "fn")
    case = _as_case(case)
    if rtol is not None:
        rtol = float(check_positive(check_float(rtol, "rtol"), "rtol"))
    names = list(case.outputs) if outputs is None else list(outputs)
    unknown = [n for n in names if n not in case.outputs]
    if unknown:
        raise ValueError(
            f"outputs must name outputs of {case.name} ({list(case.outputs)}); "
            f"got {unknown[0]!r}"
        )
    prepare = convert if convert is not None else np.array
    inputs = {k: prepare(np.array(v)) for k, v in case.inputs.items()}
    raw = _named_results(fn(**inputs, **case.options), names, case.name)
    reports = []
    for name in names:
        ref = case.outputs[name]
        got = to_numpy(raw[name], f"fn's output {name!r}")
        if got.shape != ref.shape:
            raise ValueError(
                f"{case.name}: fn's output {name!r} has shape {got.shape}; expected "
                f"{ref.shape}"
            )
        tol = case.rtol[name] if rtol is None else rtol
        reports.append(_compare_output(name, got, ref, tol))
    return Report(case.name, tuple(reports), all(r.passed for r in reports))
