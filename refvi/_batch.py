"""Batch-shape helpers shared by the batched distributions (no argument checking).

Distributions broadcast their batch axes like NumPy (and ``torch.distributions``).
A gradient computed at the broadcast shape is summed back to the shape of the
argument it belongs to, so every gradient has its parameter's shape.
"""

import numpy as np


def broadcast_batch(*named_shapes):
    """Broadcast batch shape of (name, shape) pairs, or ValueError naming them."""
    try:
        return np.broadcast_shapes(*(shape for _, shape in named_shapes))
    except ValueError:
        described = ", ".join(f"{name} {shape}" for name, shape in named_shapes)
        raise ValueError(f"batch shapes do not broadcast: {described}") from None


def sum_to_shape(g, shape):
    """Sum a broadcast gradient ``g`` back to the ``shape`` of its argument."""
    shape = tuple(shape)
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def outer_sum(a, b, shape):
    """sum of the outer products a_i b_j over the batch axes ``shape`` lacks.

    ``a`` (..., d) and ``b`` (..., e) broadcast against each other; ``shape`` is
    (..., d, e). Batch axes that ``shape`` keeps are kept, the others summed in
    one contraction (no (n, d, e) temporary when ``shape`` has no batch axes).
    """
    shape = tuple(shape)
    batch = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    nb = len(batch)
    target = (1,) * (nb - (len(shape) - 2)) + shape[:-2]
    a = np.broadcast_to(a, batch + a.shape[-1:])
    b = np.broadcast_to(b, batch + b.shape[-1:])
    letters = "abcfghklmnopqrstuvwxyz"[:nb]
    keep = "".join(c for c, t in zip(letters, target, strict=True) if t != 1)
    out = np.einsum(f"{letters}d,{letters}e->{keep}de", a, b, optimize=True)
    return out.reshape(shape)
