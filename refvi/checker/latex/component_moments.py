"""The moments of x given a component of the mixture prior, by quadrature.

``\\mathbb{E}[x \\mid j]`` and ``\\operatorname{Cov}[x \\mid j]`` (the
``mixture_prior`` setting): under the model, given component j of the prior,
z ~ N(a_j, B_j) and x | z ~ N(W z + mu, Psi), so by the tower rule and the
law of total covariance

    E[x | j]   = E_{z ~ N(a_j, B_j)}[W z + mu],
    Cov[x | j] = Psi + E_{z ~ N(a_j, B_j)}[(W z + mu - E[x | j])(...)^T],

each expectation over z computed by the tensor Gauss-Hermite rule of
``NODES`` points per latent dimension (exact for these polynomials of degree
at most two), at z = a_j + L_{B_j} t: a route that does not use the closed
forms W a_j + mu and W B_j W^T + Psi a derivation states.
"""

import itertools

import numpy as np
from numpy.polynomial import hermite_e

from refvi.checker.latex.ir import Unsupported
from refvi.checker.latex.matrix import Mat

#: Gauss-Hermite points per latent dimension.
NODES = 8


def _rule(k):
    """Nodes (M, k) and weights (M,) of the standard normal in k dimensions."""
    t, w = hermite_e.hermegauss(NODES)
    w = w / np.sqrt(2 * np.pi)
    nodes = np.array(list(itertools.product(t, repeat=k)))
    weights = np.prod(np.array(list(itertools.product(w, repeat=k))), axis=1)
    return nodes, weights


def conditional_moment(ev, node, sc):
    """The ``matrix.Mat`` of E[x | j] (a column) or Cov[x | j] at the value
    of the component index ``node.index`` in scope."""
    model = ev.model
    symbol = getattr(model, "component_symbol", None)
    if symbol is None or getattr(model, "gaussian", True):
        raise Unsupported(
            f"{node.kind}[x | {node.index}]: the moments of x given a component "
            "exist in the mixture_prior setting"
        )
    if node.index not in ev.dims:
        raise Unsupported(f"{node.kind}[x | {node.index}] outside its sum")
    j = ev.dims[node.index]
    W = model.matrix_symbol("W").a[0, 0, 0]
    mu = model.matrix_symbol("\\mu").a[0, 0, 0, :, 0]
    Psi = model.matrix_symbol("\\Psi").a[0, 0, 0]
    a = symbol("a", j).a[0, 0, 0, :, 0]
    L_B = symbol("L_B", j).a[0, 0, 0]
    t, w = _rule(a.size)
    means = (a + t @ L_B.T) @ W.T + mu  # E[x | z] at the nodes, (M, d)
    mean = w @ means
    if node.kind == "E":
        return Mat.of(mean)
    r = means - mean
    return Mat.of(Psi + (w[:, None] * r).T @ r)
