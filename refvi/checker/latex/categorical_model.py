"""Two categorical distributions in logits, as the LaTeX evaluator sees them.

The ``categorical`` setting (``refvi.checker.settings.categorical``): p =
softmax(eta) and q = softmax(eta_q) over the K values of one discrete
variable. The notation of ``derivations/categorical.md``:

- ``p``, ``q`` bare (``\\mathrm{KL}(p \\| q)``, ``H[p]``) are the two
  distributions, densities of their discrete variable: a KL or an entropy is
  the exact sum over its K values, computed by the evaluator;
- a bare ``\\mathrm{KL}`` is KL(p || q) and a bare ``H`` is H[p];
- the families of index notation, component j of each (``ir.Comp``): the
  logits ``\\eta_j`` (``\\eta^p_j``: p's) and ``\\eta^q_j``, the
  probabilities ``p_j``, ``q_j``, the log-probabilities ``\\ell_j``
  (``\\ell^p_j``) and ``\\ell^q_j``, from ``scipy.special``'s softmax and
  log-softmax of the (possibly moved) logits; ``K`` the number of values;
- ``\\frac{\\partial y}{\\partial \\eta_j}`` (``\\eta^p_j``, ``\\eta^q_j``) is
  the derivative of y in one logit (``entry_gradient``): every symbol above
  follows the moved logits.

An index that no sum binds, ``j`` or ``k``, is free: the line is claimed for
every value (every pair).
"""

import copy

import numpy as np
from scipy import special

from refvi.checker.latex.ir import Unsupported

#: The families of index notation, their distribution and what they are.
FAMILIES = {
    "\\eta": ("p", "eta"),
    "\\eta^p": ("p", "eta"),
    "\\eta^q": ("q", "eta"),
    "p": ("p", "prob"),
    "q": ("q", "prob"),
    "\\ell": ("p", "log"),
    "\\ell^p": ("p", "log"),
    "\\ell^q": ("q", "log"),
}
#: The matrix-notation names the setting binds: the families (``name[]``),
#: those a derivative moves (``moves:name``), K, the free indices it allows
#: (``index:k``) and the bare KL and H (``bare:KL``, ``bare:H``: of p and q).
SYMBOLS = (
    *(f"{name}[]" for name in FAMILIES),
    *(f"moves:{n}" for n, (_, what) in FAMILIES.items() if what == "eta"),
    "K",
    "index:k",
    "bare:KL",
    "bare:H",
)


class CategoricalModel:
    """p = softmax(eta), q = softmax(eta_q) of one variable with K values."""

    discrete = True
    gaussian = False
    pair = True

    def __init__(self, instance, label, variant=None):
        if variant:
            raise Unsupported(f"the categorical setting has no variant {variant}")
        names = instance.names
        self.label, self.variant = label, {}
        self.eta = {"p": np.asarray(names["eta"], float),
                    "q": np.asarray(names["eta_q"], float)}  # fmt: skip
        self.K = self.eta["p"].size
        self.x = np.zeros((1, 1))  # no test points: a failure names no point

    def n_components(self):
        return self.K

    def component_symbol(self, name, j):
        """Entry j of the family ``name`` (``FAMILIES``)."""
        if name not in FAMILIES:
            raise Unsupported(f"{name}_j: no such family in the categorical setting")
        which, what = FAMILIES[name]
        eta = self.eta[which]
        if what == "eta":
            value = eta[j]
        elif what == "prob":
            value = special.softmax(eta)[j]
        else:
            value = special.log_softmax(eta)[j]
        return np.full((1, 1, 1), value)  # over (datum, x, z), as every value

    def matrix_symbol(self, name):
        if name == "K":
            return np.full((1, 1, 1), float(self.K))
        raise Unsupported(f"{name}: no such symbol in the categorical setting")

    def parameter(self, name):
        """The logits a derivative ``\\partial \\eta_j`` moves (p's or q's)."""
        if name not in FAMILIES or FAMILIES[name][1] != "eta":
            raise Unsupported(
                f"a derivative in {name}_j: the categorical setting moves the "
                "logits \\eta_j (\\eta^p_j) and \\eta^q_j"
            )
        return self.eta[FAMILIES[name][0]]

    def moved(self, name, value):
        """This instance with the logits ``name`` set to ``value``."""
        out = copy.copy(self)
        out.eta = {**self.eta, FAMILIES[name][0]: np.asarray(value, float)}
        return out

    def log_pair(self, symbol, points):
        """log p or log q at the labels ``points`` (the values of the one
        discrete variable: ``z_rule``'s, never a continuous x)."""
        if not np.issubdtype(np.asarray(points).dtype, np.integer):
            raise Unsupported(
                "the categorical setting's p and q are distributions of one "
                "discrete variable (bare p, q or p(z)): no density of x"
            )
        table = special.log_softmax(self.eta[symbol])
        return table[np.asarray(points, dtype=int)]

    def log_density(self, kind, X, Z):
        raise Unsupported(
            "the categorical setting has two distributions p and q of one "
            "variable, no latent-variable model"
        )

    def z_rule(self, level):
        Z = np.arange(self.K)[None, None, :]
        return Z, np.zeros((1, 1, self.K))

    def x_rule(self, level):
        raise Unsupported("the categorical setting has no continuous variable")

    def z_points(self):
        return self.z_rule(0)[0]

    def x_data(self):
        return np.zeros((1, 1, 1, 1))


def entry_gradient(ev, node, sc):
    """d body / d eta_j at the value of j in scope (``ir.EntryGrad``), by the
    Richardson-extrapolated central differences (``evaluate.richardson``)."""
    from refvi.checker.latex.evaluate import _signed, real, richardson

    model = ev.model
    parameter = getattr(model, "parameter", None)
    if parameter is None or not hasattr(model, "component_symbol"):
        raise Unsupported(
            f"a derivative in {node.name}_{node.index}: the "
            f"{model.label.split('/')[0]} setting does not move it"
        )
    if node.index not in ev.dims:
        raise Unsupported(f"{node.name}_{node.index} outside its sum")
    base = np.array(parameter(node.name), dtype=np.float64)
    j = ev.dims[node.index]

    def at(t):
        moved = base.copy()
        moved[j] += t
        return real(ev.fresh(model.moved(node.name, moved)).num(node.body, sc))

    return _signed(richardson(at, ev.level))
