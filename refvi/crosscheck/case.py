"""A reference case: named inputs, refvi's outputs, and each output's tolerance."""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from refvi.crosscheck.quantities import QUANTITIES

__all__ = ["Case", "evaluate"]


@dataclass(frozen=True, eq=False)
class Case:
    """One reference case of the catalogue.

    Attributes
    ----------
    name : str
        Unique name, ``<quantity>.<variant>`` (e.g. ``gaussian.kl_full.cond-1e10``).
    quantity : str
        Key of ``refvi.crosscheck.quantities.QUANTITIES``: what is computed.
    description : str
        The quantity's formula, then what this case stresses.
    seed : int
        Seed of ``numpy.random.default_rng`` that generated the inputs.
    inputs : dict of str -> ndarray
        Float64 arrays, passed to a callable by keyword.
    options : dict of str -> str or float
        Non-array arguments (a covariance type, an estimator name), passed by
        keyword too.
    outputs : dict of str -> ndarray
        refvi's values.
    rtol : dict of str -> float
        Normwise relative tolerance of each output:
        ``max |got - ref| <= rtol * max |ref|``.
    tolerance_source : dict of str -> str
        Where each tolerance comes from.
    conventions : tuple of str
        What a peer must match to compute the same numbers.
    """

    name: str
    quantity: str
    description: str
    seed: int
    inputs: dict
    options: dict
    outputs: dict
    rtol: dict
    tolerance_source: dict
    conventions: tuple


def evaluate(quantity, inputs, options):
    """refvi's outputs for ``inputs`` and ``options`` of ``quantity`` (a dict of
    float64 arrays, 0-d for a scalar)."""
    if not isinstance(quantity, str) or quantity not in QUANTITIES:
        raise ValueError(
            f"quantity must be one of {sorted(QUANTITIES)}; got {quantity!r}"
        )
    for name, value in (("inputs", inputs), ("options", options)):
        if not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a dict; got {type(value).__name__}")
    out = QUANTITIES[quantity].evaluate(**inputs, **options)
    return {k: np.array(v, dtype=float) for k, v in out.items()}


def _make_case(name, quantity, seed, inputs, options, note, rtol=None):
    """Evaluate refvi on ``inputs`` and wrap everything as a :class:`Case`.

    ``rtol`` (optional dict) widens an output's tolerance to a case-specific
    error estimate (a quadrature's), with that as its source.
    """
    inputs = {k: np.array(v, dtype=float) for k, v in inputs.items()}
    outputs = evaluate(quantity, inputs, options)
    q = QUANTITIES[quantity]
    tol = {k: q.tolerance(k) for k in outputs}
    for k, value in (rtol or {}).items():
        if value > tol[k][0]:
            tol[k] = (value, "the quadrature's own error estimate")
    return Case(
        name=name,
        quantity=quantity,
        description=f"{q.description}. Case: {note}",
        seed=seed,
        inputs=inputs,
        options=dict(options),
        outputs=outputs,
        rtol={k: t[0] for k, t in tol.items()},
        tolerance_source={k: t[1] for k, t in tol.items()},
        conventions=q.conventions,
    )
