"""Component notation of a discrete latent: the value k of z as an index.

A mixture derivation names the value of its latent z by an index, k
(Bishop's ``p(z_k = 1) = \\pi_k``): ``p(z = k)``, ``p(x_i | z = k)``, the
weights ``\\pi_k``, the responsibilities ``r_{ik}`` (``\\gamma_{ik}``,
``\\gamma(z_{ik})``), the component parameters ``\\mu_k``, ``\\Sigma_k``,
``L_k`` (the Cholesky factor), the logits ``\\eta_k`` and the effective counts
``N_k = \\sum_i r_{ik}``. The parser reads them as functions of z (so a sum
``\\sum_k`` is the sum over z, and a line with k free is claimed for every
value of z):

- ``\\pi_k`` is p(z), ``r_{ik}`` the posterior p(z | x_i), ``q_{ik}`` q(z | x_i);
- ``N_k`` is the sum over the data of the posterior, ``\\sum_i p(z | x_i)``;
- ``\\mu_k``, ``\\Sigma_k``, ``L_k``, ``\\eta_k`` are ``ir.LabelParam``: the
  model's parameter of the component z (``Model.label_parameter``).

A version after the index (``\\pi_k^{new}``, ``\\mu_k^{(t+1)}``) reads the
parameter at the end of an EM step (``parser.PARAMETER_VERSIONS``).
"""

from refvi.checker.latex import ir

#: Letters that index the value of a discrete latent when no sum binds them.
LABEL_LETTERS = ("k",)
#: Component parameters, by their LaTeX name: the name ``Model.label_parameter``
#: knows them by.
PARAMETERS = {"\\mu": "mu", "\\Sigma": "Sigma", "L": "L", "\\eta": "eta"}
#: Letters of the responsibilities r_{ik} (also \gamma_{ik}, \gamma(z_{ik})).
RESPONSIBILITIES = ("r", "\\gamma")


def label_atom(p):
    """The component-notation atom at the parser ``p``'s position, or None
    (the position is left unchanged)."""
    t = p.peek()
    if t is None:
        return None
    if t.text == "softmax":
        return softmax_atom(p)
    name = t.text
    if name == "\\gamma" and p.at("(", 1):  # Bishop's \gamma(z_{nk})
        j = p.i + 2
        if j < len(p.toks) and p.toks[j].text == p.latent:
            save = p.i
            p.i = j + 1
            if _labelled(p) and p.at(")"):
                p.take()
                at = _version(p)
                return ir.Density("p", (p.latent,), (p.observed_name(),), at=at)
            p.i = save
        return None
    is_known = name in PARAMETERS or name in RESPONSIBILITIES or name in ("\\pi", "N")
    if not is_known or not p.at("_", 1):
        return None
    save = p.i
    p.take()
    if not _labelled(p):
        p.i = save
        return None
    at = _version(p)
    if name == "\\pi":
        return ir.Density("p", (p.latent,), (), at=at)
    if name in RESPONSIBILITIES:
        return ir.Density("p", (p.latent,), (p.observed_name(),), at=at)
    if name == "N":
        post = ir.Density("p", (p.latent,), (p.observed_name(),), at=at)
        return ir.DataSum(post, "i")
    return ir.LabelParam(PARAMETERS[name], at)


def softmax_atom(p):
    """``\\operatorname{softmax}(\\eta)_k``: the softmax of a component
    parameter (the logits) at the label k (``ir.Softmax``), or None."""
    if not (p.at("softmax") and p.at("(", 1)) or p.peek(2).text not in PARAMETERS:
        return None
    if not p.at(")", 3):
        return None
    save = p.i
    name = p.peek(2).text
    p.i += 4
    if not _labelled(p):
        p.i = save
        return None
    return ir.Softmax(ir.LabelParam(PARAMETERS[name], _version(p)))


def _labelled(p):
    """Take a subscript ``_k``, ``_{ik}``, ``_{nk}`` (a data index and a
    label) if its last letter is a label; whether it did."""
    if not p.at("_"):
        return False
    start = p.i
    p.take()
    group = [g.text for g in p.group_tokens()]
    letters = [g for g in group if g != ","]
    if letters and is_label(p, letters[-1]) and len(letters) <= 2:
        if len(letters) == 1 or letters[0] in ("i", "n"):
            return True
    p.i = start
    return False


def is_label(p, letter):
    """Whether ``letter`` names a value of the latent here: a label letter
    no sum binds otherwise, or one a sum over z (``\\sum_k``) or ``z = k``
    made an alias of the latent."""
    if p.aliases.get(letter) == p.latent:
        return True
    return letter in LABEL_LETTERS and letter not in p.variables


def _version(p):
    """``^{new}``, ``^{(t+1)}``, ``^{old}`` after a component symbol: the
    parameters' value, or '' (the position left at a '^' that is not one)."""
    if not p.at("^"):
        return ""
    from refvi.checker.latex.parser import PARAMETER_VERSIONS

    start = p.i
    p.take()
    text = "".join(g.text for g in p.group_tokens()).replace(" ", "")
    version = PARAMETER_VERSIONS.get(text.strip("()"))
    if version is None:
        p.i = start
        return ""
    return version


def is_matrix(node):
    """Whether ``node`` is a component's vector or matrix (``^\\top``,
    ``^{-1}`` read as in matrix notation)."""
    return isinstance(node, ir.LabelParam) and node.name in ("mu", "Sigma", "L")


def at_parameter(p, k):
    """Whether a component's parameter starts ``k`` tokens ahead (``\\det
    \\Sigma_k``, ``\\operatorname{tr}(\\Sigma_k^{-1} ...)``)."""
    t = p.peek(k)
    while t is not None and t.text in ("(", "{"):
        k += 1
        t = p.peek(k)
    return t is not None and t.text in PARAMETERS and p.at("_", k + 1)
