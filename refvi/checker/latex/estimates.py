"""A model parameter equated to a statistic of the data: an estimate.

``\\mu = \\bar x - W \\bar m``, ``W = C_{xm} (S + C_{mm})^{-1}``, ``\\mu =
\\bar x``: a derivation writes the value a parameter takes at an M-step or at
a maximum of the likelihood with the parameter's own letter on the left and
statistics of the data on the right. The instances' parameters are drawn at
random, not fitted to their data, so such a line read at the instance's
parameters would fail although the mathematics is right.

A chain whose left side is one of the model's parameters in matrix notation,
undecorated (``W``, ``\\mu``, ``\\psi``, ``\\psi_j``, ``\\Psi``), and whose
other side uses the data (``\\bar x``, ``\\hat\\Sigma``, a sum over the data,
a symbol defined from them) is an estimate. Where the section declares its
estimates the M-step's (``assume: M-step (estimates = m-step)``), it is
checked at one EM step of the setting (``models.ContinuousModel.version``):
the parameters on either side at the step's end theta^new, everything else
(the posterior's S, m, A and the statistics defined from them) at its start
theta^old. Elsewhere the line is unsupported with that reason. A
component's parameter (``\\Sigma_k = S_k / N_k - \\mu_k \\mu_k^\\top``) is
always unsupported: write its version (``\\mu_k^{new} = s_k / N_k``), which
is checked at the mixture setting's M-step.
"""

import dataclasses

from refvi.checker.latex import ir
from refvi.checker.latex.data_statistics import DATA_STATISTICS

#: The model's parameters in matrix notation (``models.MATRIX_SYMBOLS``).
PARAMETERS = ("W", "\\mu", "\\psi", "\\Psi")
_DATA = (ir.DataSum, ir.DataMean)


def _parameter(node):
    """The parameter the undecorated ``node`` is, and whether it is a
    component's (``\\Sigma_k``), or None."""
    if isinstance(node, ir.Elem):
        node = node.base
    if isinstance(node, ir.Sym) and node.name in PARAMETERS:
        return node.name, False
    if isinstance(node, ir.LabelParam) and not node.at:
        return f"{node.name}_k", True
    return None


def _uses_data(node, nodes):
    return any(
        isinstance(n, _DATA) or (isinstance(n, ir.Sym) and n.name in DATA_STATISTICS)
        for n in nodes(node)
    )


def _at_new(node, reason):
    """``node`` with each of the model's parameters read at theta^new."""
    if isinstance(node, ir.Sym) and node.name in PARAMETERS:
        return ir.At(node, "new", reason)
    if not dataclasses.is_dataclass(node) or isinstance(node, ir.At):
        return node
    kids = {}
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, tuple):
            kids[f.name] = tuple(_at_new(c, reason) for c in v)
        elif dataclasses.is_dataclass(v):
            kids[f.name] = _at_new(v, reason)
    return dataclasses.replace(node, **kids)


def read_estimates(exprs, nodes):
    """The sides ``exprs`` of a chain, read as an estimate when the chain
    equates a model parameter to a statistic of the data (see the module):
    each side at theta^old with the parameters at theta^new, evaluated only
    under the M-step's assumption. A component's parameter raises
    ``ir.Unsupported``. ``nodes`` iterates a node and every node under it."""
    found = _parameter(exprs[0]) if exprs else None
    if found is None or not any(_uses_data(e, nodes) for e in exprs[1:]):
        return exprs
    name, component = found
    reason = (
        f"{name} = a statistic of the data: an estimate (an M-step's update, a "
        f"maximum of the likelihood) is not checked at the instance's {name}, "
        "which is not fitted to its data"
    )
    if component:
        raise ir.Unsupported(
            f"{reason}; write the update with its version (\\mu_k^{{new}}), "
            "checked at the setting's M-step"
        )
    reason += (
        "; a section whose estimates are an M-step's says so: "
        "assume: M-step (estimates = m-step)"
    )
    return [ir.At(_at_new(e, reason), "old", reason) for e in exprs]
