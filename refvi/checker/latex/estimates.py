"""A model parameter equated to a statistic of the data: an estimate, not checked.

``\\mu = \\bar x - W \\bar m``, ``\\mu = \\bar x``, ``\\Sigma_k = S_k / N_k -
\\mu_k \\mu_k^\\top``: a derivation writes the value a parameter takes at an
M-step or at a maximum of the likelihood with the parameter's own letter on
the left and statistics of the data on the right. The instances' parameters
are drawn at random, not fitted to their data, so such a line read at the
instance's parameters would fail although the mathematics is right. A chain
whose left side is one of the model's parameters, undecorated (``W``,
``\\mu``, ``\\psi``, ``\\psi_j``, ``\\Psi``, a component's ``\\mu_k``,
``\\Sigma_k``), and whose other side uses the data (``\\bar x``,
``\\hat\\Sigma``, a sum over the data, a symbol defined from them) is
unsupported with that reason. An update written with its version
(``\\mu_k^{new} = s_k / N_k``) is checked at the setting's M-step.
"""

from refvi.checker.latex import ir
from refvi.checker.latex.data_statistics import DATA_STATISTICS

#: The model's parameters in matrix notation (``models.MATRIX_SYMBOLS``).
PARAMETERS = ("W", "\\mu", "\\psi", "\\Psi")
_DATA = (ir.DataSum, ir.DataMean)


def _parameter(node):
    """The parameter the undecorated ``node`` is, or None."""
    if isinstance(node, ir.Elem):
        node = node.base
    if isinstance(node, ir.Sym) and node.name in PARAMETERS:
        return node.name
    if isinstance(node, ir.LabelParam) and not node.at:
        return f"{node.name}_k"
    return None


def _uses_data(node, nodes):
    return any(
        isinstance(n, _DATA) or (isinstance(n, ir.Sym) and n.name in DATA_STATISTICS)
        for n in nodes(node)
    )


def refuse_estimates(exprs, nodes):
    """Raise ``ir.Unsupported`` when the chain ``exprs`` equates a model
    parameter to a statistic of the data (see the module); ``nodes``
    iterates a node and every node under it."""
    name = _parameter(exprs[0]) if exprs else None
    if name is None or not any(_uses_data(e, nodes) for e in exprs[1:]):
        return
    raise ir.Unsupported(
        f"{name} = a statistic of the data: an estimate (an M-step's update, a "
        "maximum of the likelihood) is not checked at the instance's "
        f"{name}, which is not fitted to its data; an update written with its "
        "version (\\mu_k^{new}) is checked at the setting's M-step"
    )
