"""Derivatives in a parameter of the instance, entry by entry (``ir.MatGrad``).

``\\frac{\\partial f}{\\partial P}`` with P a symbol of matrix notation that
the setting can move (``Model.parameter``/``Model.moved``: the gaussian
setting's mu_p, L_p, mu_q, L_q, bare mu and L being p's; linear_gaussian's W,
mu, psi, m_q, L_q) is the matrix of P's shape whose entry (a, b) is the
derivative of the scalar f in P_ab, by Richardson-extrapolated central
differences, (4 D(h/2) - D(h)) / 3 with D(h) = (f(P + h E_ab) - f(P - h
E_ab)) / 2h, the same rule as ``\\nabla_\\theta`` (``evaluate.richardson``:
h at levels 0 and 2, 2h at levels 1 and 3, so the difference of the levels
is the error estimate). A lower-triangular factor (L, L_p, L_q, m_q's L_q)
is moved in its free entries only, the lower triangle: its derivative is
zero above the diagonal (CONTRIBUTING's convention for Cholesky factors).
A per-datum parameter (m_q, L_q) is moved at every datum at once; each
datum's value depends on its own only, so each datum gets its own
derivative. The body is evaluated at the points of the enclosing scope.
A derivative in the datum, ``\\partial x_i``, moves the scope's data
instead, one datum at a time (:func:`datum_gradient`).
"""

import dataclasses
from functools import partial

import numpy as np

from refvi.checker.latex import ir
from refvi.checker.latex.matrix import Mat


def matrix_gradient(ev, node, sc):
    """The ``matrix.Mat`` of d body / d P on the evaluator ``ev``'s model."""
    from refvi.checker.latex.evaluate import real, richardson

    if node.name in (f"{ev.observed}_i", f"{ev.observed}_n"):
        return datum_gradient(ev, node, sc)
    model = ev.model
    parameter = getattr(model, "parameter", None)
    setting = model.label.split("/")[0]
    if parameter is None:
        raise ir.Unsupported(
            f"a derivative in {node.name}: the {setting} setting does not move "
            "its parameters one by one (gaussian and linear_gaussian do)"
        )
    base, free, per_datum = parameter(node.name)
    entry_shape = base.shape[1:] if per_datum else base.shape

    def at(position, t):
        moved = base.copy()
        moved[(Ellipsis, *position)] += t
        return real(ev.fresh(model.moved(node.name, moved)).num(node.body, sc))

    values = {}
    for position in zip(*np.nonzero(free), strict=True):
        position = tuple(int(p) for p in position)
        values[position] = richardson(partial(at, position), ev.level)
    if not values:
        raise ir.Unsupported(f"{node.name} has no free entry")
    lead = np.broadcast_shapes(*(np.shape(v) for v in values.values()))
    if per_datum and lead[0] not in (1, base.shape[0]):
        raise ir.Unsupported(f"a derivative in the per-datum {node.name} here")
    rows, cols = entry_shape if len(entry_shape) == 2 else (entry_shape[0], 1)
    out = np.zeros(lead + (rows, cols))
    for position, value in values.items():
        r, c = position if len(position) == 2 else (position[0], 0)
        out[..., r, c] = np.broadcast_to(value, lead)
    return Mat(out)


def datum_gradient(ev, node, sc):
    """``\\frac{\\partial f}{\\partial x_i}``: the derivative in the datum
    x_i, a vector per datum. Each datum's entries are moved one at a time
    (the other data stay), so a body summed over the data (f = sum_i ...)
    and a body per datum both give datum i's own derivative: the body's
    value at datum i, or its one value when it is summed."""
    from refvi.checker.latex.evaluate import real, richardson

    if sc.x_bound or sc.X is None:
        raise ir.Unsupported(f"a derivative in {node.name} inside an integral over x")
    X = np.asarray(sc.X, dtype=np.float64)
    n, d = X.shape[0], X.shape[-1]

    def at(i, j, t):
        moved = X.copy()
        moved[i, ..., j] += t
        at_moved = dataclasses.replace(sc, X=moved)
        v = np.asarray(real(ev.fresh().num(node.body, at_moved)))
        row = v[i] if v.ndim and v.shape[0] == n else v[0] if v.ndim else v
        if np.size(row) != 1:
            raise ir.Unsupported(
                f"a derivative in {node.name} of a value with more than one "
                "entry per datum"
            )
        return float(np.ravel(row)[0])

    out = np.zeros((n, d, 1))
    for i in range(n):
        for j in range(d):
            out[i, j, 0] = richardson(partial(at, i, j), ev.level)
    return Mat(out.reshape((n,) + (1,) * (X.ndim - 2) + (d, 1)))


def entry_count(model, name, sc):
    """How many entries the vector parameter ``name`` has (the range of an
    elementwise derivative's index)."""
    if name.split("_")[-1] in ("i", "n"):  # the datum x_i
        return int(np.shape(sc.X)[-1])
    parameter = getattr(model, "parameter", None)
    if parameter is None:
        raise ir.Unsupported(f"a derivative in {name}: no parameter moves here")
    base, _, per_datum = parameter(name)
    shape = base.shape[1:] if per_datum else base.shape
    if len(shape) != 1:
        raise ir.Unsupported(
            f"an elementwise derivative in {name}, which is not a vector: write "
            "both indices"
        )
    return int(shape[0])
