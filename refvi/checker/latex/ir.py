"""Typed intermediate form of a display equation.

The parser (``parser.py``) turns tokens into these frozen nodes; the evaluator
(``evaluate.py``) turns them into numbers. Each node has a type, given by
:func:`infer`: a ``density`` (a non-negative function of its free variables),
a ``log-density`` (the log of one) or a ``scalar`` (any other real function),
together with the set of its free variables. Binders (integrals,
expectations, KL, entropy, sums) remove their bound variable from that set.
``describe`` prints a node in the form ``refvi verify --explain`` shows.
"""

from dataclasses import dataclass


class Unsupported(Exception):
    """A construct outside the vocabulary; ``token`` and ``line`` locate it."""

    def __init__(self, message, token=None, line=None):
        super().__init__(message)
        self.token = token
        self.line = line


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Const:
    """``\\pi`` or ``e``."""

    name: str


@dataclass(frozen=True)
class Var:
    """The value of a variable used as a number (a 1-dimensional z or x)."""

    name: str


@dataclass(frozen=True)
class Density:
    """``p(vars | given)`` or ``q(...)``; ``vars is None`` for a bare ``q``.

    ``deco`` is the subscript (``theta``, ``phi``, ``data``) or ''.
    """

    symbol: str
    vars: tuple | None
    given: tuple
    deco: str = ""
    dataset: bool = False  # written in the data set's letters (p(X|theta))
    at: str = ""  # the model's parameters: '' theta, 'old', 'new' (an EM step)
    index: str = ""  # a mixture's component (f_a, g_b: ``mixture_pair``)


@dataclass(frozen=True)
class Normal:
    """``\\mathcal{N}(var; mean, variance)``: the univariate normal density
    of the one-dimensional variable ``var``, as a function of it."""

    var: str
    mean: object
    variance: object


@dataclass(frozen=True)
class NormalAt:
    """``\\mathcal{N}(point; mean, cov)``: the normal density at ``point``
    (an expression, not a declared variable), in matrix notation."""

    point: object
    mean: object
    cov: object


@dataclass(frozen=True)
class Gaussian:
    """``\\mathcal{N}(mean, cov)`` written as a KL's argument, without its
    variable: the normal density of ``var`` (the other argument's) in matrix
    notation (``\\mathrm{KL}(p \\| \\mathcal{N}(0, I))``)."""

    mean: object
    cov: object
    var: str


@dataclass(frozen=True)
class Grad:
    """``\\nabla_\\theta body`` (``group`` 'theta': the model's parameters)
    or ``\\nabla_\\phi body`` ('phi': those of q), read along one random
    direction of the group: the directional derivative of ``body``; or
    ``\\frac{\\partial}{\\partial \\mu} body`` ('mu', 'sigma': the mean or
    standard deviation of a one-dimensional Gaussian q(z|x))."""

    group: str
    body: object


@dataclass(frozen=True)
class Func:
    """``f(arg)``: a function the derivation leaves abstract (f, g, h),
    declared convex or concave in the front matter or arbitrary; the line is
    checked with several functions of that kind (``evaluate.FUNCTIONS``).
    ``arg`` is a scalar expression, the latent z, or a :class:`Reparam`."""

    name: str
    arg: object


@dataclass(frozen=True)
class Reparam:
    """The reparameterized latent of the Gaussian q(z|x): ``g_\\phi(\\epsilon)``
    = m + L epsilon, or ``\\mu + \\sigma \\odot \\epsilon`` (``diag``: a diagonal
    q), a vector, at the noise epsilon bound by ``E_{p(\\epsilon)}``."""

    diag: bool = False


#: The standard normal noise of the reparameterization trick.
NOISE = "epsilon"


@dataclass(frozen=True)
class AtExactQ:
    """``body`` evaluated with q(z|x) the exact posterior, a Gaussian with its
    mean and Cholesky factor (``bars.py``)."""

    body: object


@dataclass(frozen=True)
class AtNoise:
    """A density of the latent at the reparameterized latent ``value`` (a
    :class:`Reparam`): ``p(x, m + \\sigma \\odot \\varepsilon)`` (``noise.py``)."""

    body: object
    value: object


@dataclass(frozen=True)
class Add:
    """Sum of ``terms``; ``signs`` holds +1 or -1 per term."""

    terms: tuple
    signs: tuple


@dataclass(frozen=True)
class Mul:
    factors: tuple


@dataclass(frozen=True)
class Div:
    num: object
    den: object


@dataclass(frozen=True)
class Pow:
    base: object
    exponent: object


@dataclass(frozen=True)
class Log:
    arg: object


@dataclass(frozen=True)
class Exp:
    arg: object


@dataclass(frozen=True)
class Integral:
    """``\\int body d<var>`` over the whole space of ``var``."""

    body: object
    var: str


@dataclass(frozen=True)
class Expectation:
    """``E_{var ~ measure}[body]``."""

    measure: Density
    body: object
    var: str


@dataclass(frozen=True)
class Sum:
    """``\\sum_index body`` over the values of the discrete latent ``var``."""

    body: object
    var: str
    index: str


@dataclass(frozen=True)
class DataSum:
    """``\\sum_{i=1}^{N} body`` (``product``: ``\\prod_i``) over the data
    x_1..x_N of the instance: the sum (product) of ``body``'s values at each
    datum. In a line that sums over the data, a density written in the data
    set's letters (``p(X|\\theta)``) is the product over the data, and a
    bound or divergence of the data set (``\\mathcal{L}(q, \\theta)``,
    ``KL(q(Z) \\| p(Z|X))``) the sum of the per-datum ones."""

    body: object
    index: str
    product: bool = False


@dataclass(frozen=True)
class IWBound:
    """The importance-weighted bound of ``count`` samples (IWAE's
    ``\\mathcal{L}_K``): E over z_1..z_K iid q(z|x) of
    log (1/K) sum_k w(z_k), with ``weight`` w (None: p(x, z) / q(z|x))."""

    count: object
    weight: object = None


@dataclass(frozen=True)
class SampleCount:
    """``K``: the number of importance samples, instantiated as 1 and 2 in
    turn (each its own instance; ``evaluate.SAMPLE_COUNTS``)."""


@dataclass(frozen=True)
class DataMean:
    """``\\frac{1}{N}\\sum_{i=1}^{N} body``: the mean of ``body`` over the
    data; where the setting's data are a distribution p_data(x) (the
    aggregated and amortized settings), its expectation under p_data."""

    body: object
    index: str


@dataclass(frozen=True)
class DataCount:
    """``N``: the number of data points."""


@dataclass(frozen=True)
class SampleMean:
    """``\\frac{1}{L}\\sum_{l=1}^{L} body`` with ``z^{(l)}`` drawn from the
    declared q(z|x): a Monte Carlo average of ``body`` over the latent ``var``
    (compared by ``\\approx`` within standard errors, as a whole side)."""

    body: object
    var: str
    count: str


@dataclass(frozen=True)
class KL:
    a: Density
    b: Density


@dataclass(frozen=True)
class NamedDivergence:
    """``D_{name}(a \\| b)``: an approximation or bound of KL(a || b) between
    two mixtures named by its subscript (``D_{\\text{var}}``), the value of
    the setting's implementation (``mixture_pair``)."""

    name: str
    a: Density
    b: Density


@dataclass(frozen=True)
class Entropy:
    a: Density


@dataclass(frozen=True)
class ELBO:
    """The evidence lower bound of ``q`` (None: the declared variational q);
    ``F(p(z|x))`` is the bound at q = the posterior."""

    q: Density | None
    at: str = ""  # the model's parameters (Density.at)


@dataclass(frozen=True)
class Param:
    """A named parameter of the declared q: ``\\mu`` or ``\\sigma`` (of the
    Gaussian q(z|x), per datum), at the latent dimension ``index`` (a
    ``\\sum_j`` index) or, without one, of a one-dimensional latent; with
    the index ``1`` or ``2``, of the gaussian setting's p or q."""

    name: str
    index: str | None


@dataclass(frozen=True)
class Dim:
    """``J``: the number of latent dimensions."""


@dataclass(frozen=True)
class DimSum:
    """``\\sum_j body`` over the latent dimensions j = 1..J."""

    body: object
    index: str


@dataclass(frozen=True)
class Sym:
    """A matrix, vector or dimension of the declared model read in matrix
    notation (``W``, ``\\Psi``, ``C``, ``m_q``, ``I_k``, ``d``): its value is
    the instance's own array (``models.matrix_symbol``); vectors are columns."""

    name: str


@dataclass(frozen=True)
class VecVar:
    """``x`` or ``z`` in matrix notation: the point as a column vector;
    ``index`` is the subscript it was written with (``x_i``: ``i``)."""

    name: str
    index: str = ""


@dataclass(frozen=True)
class Transpose:
    arg: object


@dataclass(frozen=True)
class Det:
    """``\\det A``."""

    arg: object


@dataclass(frozen=True)
class Trace:
    """``\\operatorname{tr} A``."""

    arg: object


@dataclass(frozen=True)
class Norm:
    """``\\|A\\|`` (``\\|A\\|_F``): Euclidean of a vector, Frobenius of a
    matrix."""

    arg: object


@dataclass(frozen=True)
class Elem:
    """``A_{ja}``, ``(L_M)_{aa}``, ``\\psi_j``: an entry at indices bound by
    :class:`IndexSum` (a vector takes one index)."""

    base: object
    indices: tuple


@dataclass(frozen=True)
class IndexSum:
    """``\\sum_{j=1}^{d} body``: ``upper`` is a :class:`Sym` or
    :class:`Number`, or None when the range is that of the entries the
    index picks (``\\sum_a \\log (L_q)_{aa}``); ``lower`` the first value
    of the index when it is not 1 (``\\sum_{j=k+1}^{d}``), an expression."""

    body: object
    index: str
    upper: object
    lower: object = None


@dataclass(frozen=True)
class IndexMax:
    """``\\max_k body``: the largest value of ``body`` over the range of the
    entries (components) the index ``index`` picks."""

    body: object
    index: str


@dataclass(frozen=True)
class Comp:
    """``a_j``, ``B_j``, ``L_{B_j}``, ``\\pi_j``: component ``index`` of a
    family of the model (the mixture prior's components). An index that no
    :class:`IndexSum` binds is free: the line is claimed for every component."""

    name: str
    index: str


@dataclass(frozen=True)
class Diag:
    """``\\operatorname{diag}(v)``: the diagonal matrix of a column vector,
    the column of a square matrix's diagonal; with ``index`` (``diag(1 /
    L_{jj})``, j bound by nothing else) the diagonal matrix whose entry j is
    ``arg`` at j, over the range of the entries ``arg`` picks."""

    arg: object
    index: str | None = None


@dataclass(frozen=True)
class Chol:
    """``L_{G_j}``: the lower Cholesky factor of the symmetric
    positive-definite ``arg`` (a defined symbol or a family's member)."""

    arg: object


@dataclass(frozen=True)
class Tril:
    """``\\operatorname{tril}(A)``: the lower triangle of A, diagonal kept."""

    arg: object


@dataclass(frozen=True)
class Max:
    """``\\max(a, b)``: the larger value, entry by entry (``entries.py``)."""

    args: tuple


@dataclass(frozen=True)
class At:
    """``body`` of a line that states an estimate (``estimates.py``), read
    at the parameters ``at`` of an EM step ('new': the M-step's update,
    'old': where it starts) when the section declares its estimates the
    M-step's (``assume: M-step (estimates = m-step)``); else unsupported
    for ``reason``."""

    body: object
    at: str
    reason: str


@dataclass(frozen=True)
class Defined:
    """A symbol the derivation defined in an earlier display (``M = L_q^{-1}
    L_p``, ``\\rho_j = ...``), standing for ``body``, its right side as read
    there; ``line`` is the definition's file line (named when ``body``
    cannot be evaluated). See ``definitions.py``."""

    name: str
    body: object
    line: int


@dataclass(frozen=True)
class Weight:
    """``g_i``: an upstream weight the prose declares ("with upstream
    gradients $g_i$", ``upstream.py``), one arbitrary number per datum; each
    instance draws its own (``upstream.weights``)."""

    name: str


@dataclass(frozen=True)
class JointGrad:
    """``\\frac{\\partial body}{\\partial \\log p(x_i, z=k)}``: the derivative
    of a value per datum in the log-joint table of a discrete latent, at
    every label k (``table_derivatives``)."""

    body: object


@dataclass(frozen=True)
class MatGrad:
    """``\\frac{\\partial body}{\\partial P}``: the derivative of the scalar
    ``body`` in the parameter ``P`` of the instance (a matrix-notation symbol
    the setting can move, ``models.*.moved``): a matrix of P's shape, entry by
    entry by central differences; a lower-triangular factor L has the
    derivative in its free (lower) entries and zeros above. ``entry`` holds
    the indices of an elementwise derivative (``\\partial L_{ij}``)."""

    name: str
    body: object
    entry: tuple = ()


@dataclass(frozen=True)
class EntryGrad:
    """``\\frac{\\partial body}{\\partial \\eta_j}``: the derivative of the
    scalar ``body`` in entry ``index`` of the parameter family ``name`` (the
    categorical setting's logits, ``categorical_model.entry_gradient``); an
    index no sum binds is free, as a component's is."""

    name: str
    index: str
    body: object


@dataclass(frozen=True)
class CondMoment:
    """``\\mathbb{E}[x \\mid j]`` (``kind`` 'E') or ``\\operatorname{Cov}[x
    \\mid j]`` ('Cov'): the mean or covariance of x given component ``index``
    of the mixture prior (``component_moments.py``); a free index is every
    component, as a component's is."""

    kind: str
    index: str


@dataclass(frozen=True)
class Kronecker:
    """``\\delta_{jk}``: 1 where the two indices take one value, else 0."""

    indices: tuple


@dataclass(frozen=True)
class LabelParam:
    """``\\mu_k``, ``\\Sigma_k``, ``L_k``, ``\\eta_k``: the parameter ``name`` of
    the component z = k of a discrete latent, a function of z
    (``labels.py``); ``at`` the parameters' value (Density.at)."""

    name: str
    at: str = ""


@dataclass(frozen=True)
class LabelCount:
    """``K``: the number of values of a discrete latent (of components)."""


@dataclass(frozen=True)
class Softmax:
    """``\\operatorname{softmax}(\\eta)_k``: exp(arg(z)) / sum_z' exp(arg(z')),
    ``arg`` a function of the discrete latent z."""

    arg: LabelParam


MATRIX_NODES = (Sym, VecVar, Transpose, Det, Trace, Norm, Elem, IndexSum, Comp,
                Diag, Tril, MatGrad)  # fmt: skip


def free_components(node, bound=frozenset()):
    """The component indices of ``node`` that no index sum binds, and the
    entry indices of its elementwise derivatives (``\\partial \\psi_j``)."""
    if isinstance(node, Comp | CondMoment):
        return set() if node.index in bound else {node.index}
    if isinstance(node, Kronecker):
        return set(node.indices) - bound
    if isinstance(node, EntryGrad) and node.index not in bound:
        return {node.index} | free_components(node.body, bound)
    if isinstance(node, Density) and node.index:
        return set() if node.index in bound else {node.index}
    if isinstance(node, MatGrad) and node.entry:  # \partial \psi_j: each entry
        return free_components(node.body, bound) | (set(node.entry) - bound)
    if isinstance(node, IndexSum | IndexMax | Diag) and node.index:
        bound = bound | {node.index}
    out = set()
    if isinstance(node, Elem):  # an entry index no sum binds (entries.py)
        out = {i for i in node.indices if i not in bound}
    for value in getattr(node, "__dict__", {}).values():
        for item in value if isinstance(value, tuple) else (value,):
            if hasattr(item, "__dataclass_fields__"):
                out |= free_components(item, bound)
    return out


@dataclass(frozen=True)
class Relation:
    """One claim ``left op right``; ``line`` is the file line of ``op``."""

    op: str
    left: object
    right: object
    line: int


@dataclass(frozen=True)
class Equation:
    """A chain ``e0 op1 e1 op2 e2 ...`` read with one choice per ambiguity.

    ``reading`` names the choice per ambiguous site (empty: unambiguous);
    ``sites`` describes each ambiguous site found.
    """

    line: int
    exprs: tuple
    relations: tuple
    reading: tuple = ()
    sites: tuple = ()  # (line, conventional reading, first-factor reading)


DEFINITION_OPS = (":=", "=:")


@dataclass(frozen=True)
class Type:
    kind: str  # 'density', 'log-density' or 'scalar'
    free: frozenset

    def __str__(self):
        of = ", ".join(sorted(self.free))
        return f"{self.kind} of ({of})" if of else f"{self.kind} (constant)"


def density_vars(d, latent):
    """The variables of a density, a bare ``q`` being a density of ``latent``."""
    if isinstance(d, Gaussian):
        return (d.var,), ()
    if d.vars is None:
        return (latent,), ()
    return d.vars, d.given


def measure_vars(d, latent="z", observed="x"):
    """(variables, given) of a density a KL is taken of: a density's own
    (``density_vars``), or those of a density written as an expression (the
    aggregate ``\\int q(z|x) p(x) dx``): its free latent (else its free
    observed variable), given the rest."""
    if isinstance(d, Density):
        return density_vars(d, latent)
    t = infer(d, latent, observed)
    var = latent if latent in t.free else observed
    if t.kind != "density" or var not in t.free:
        raise Unsupported(f"{describe(d)} is not a density of {latent} or {observed}")
    return (var,), tuple(sorted(t.free - {var}))


def infer(node, latent="z", observed="x"):
    """The :class:`Type` of ``node``; raises Unsupported on an ill-typed node."""
    if isinstance(node, Number | Const):
        return Type("scalar", frozenset())
    if isinstance(node, Var):
        return Type("scalar", frozenset({node.name}))
    if isinstance(node, Density):
        v, g = density_vars(node, latent)
        return Type("density", frozenset(v) | frozenset(g))
    if isinstance(node, Grad):
        return Type("scalar", infer(node.body, latent, observed).free)
    if isinstance(node, Normal):
        m, v = (
            infer(node.mean, latent, observed),
            infer(node.variance, latent, observed),
        )
        return Type("density", frozenset({node.var}) | m.free | v.free)
    if isinstance(node, Func):
        return Type("scalar", infer(node.arg, latent, observed).free)
    if isinstance(node, Gaussian):
        m, c = infer(node.mean, latent, observed), infer(node.cov, latent, observed)
        return Type("density", frozenset({node.var}) | m.free | c.free)
    if isinstance(node, Reparam):
        return Type("scalar", frozenset({observed, NOISE}))
    if isinstance(node, AtExactQ):
        return infer(node.body, latent, observed)
    if isinstance(node, AtNoise):
        body = infer(node.body, latent, observed)
        return Type(body.kind, (body.free - {latent}) | {observed, NOISE})
    if isinstance(node, Add):
        ts = [infer(t, latent, observed) for t in node.terms]
        kinds = {t.kind for t in ts}
        kind = "log-density" if kinds == {"log-density"} else "scalar"
        return Type(kind, frozenset().union(*(t.free for t in ts)))
    if isinstance(node, Mul):
        ts = [infer(t, latent, observed) for t in node.factors]
        dens = all(t.kind == "density" or _positive_const(f) for t, f in
                   zip(ts, node.factors, strict=True))  # fmt: skip
        return Type(
            "density" if dens else "scalar", frozenset().union(*(t.free for t in ts))
        )
    if isinstance(node, Div):
        a, b = infer(node.num, latent, observed), infer(node.den, latent, observed)
        dens = (a.kind == "density" or _positive_const(node.num)) and (
            b.kind == "density" or _positive_const(node.den)
        )
        return Type("density" if dens else "scalar", a.free | b.free)
    if isinstance(node, Pow):
        a, b = (
            infer(node.base, latent, observed),
            infer(node.exponent, latent, observed),
        )
        return Type("density" if a.kind == "density" else "scalar", a.free | b.free)
    if isinstance(node, Log):
        a = infer(node.arg, latent, observed)
        return Type("log-density" if a.kind == "density" else "scalar", a.free)
    if isinstance(node, Exp):
        a = infer(node.arg, latent, observed)
        return Type("density" if a.kind == "log-density" else "scalar", a.free)
    if isinstance(node, Integral | Sum):
        body = infer(node.body, latent, observed)
        if node.var not in body.free:
            raise Unsupported(
                f"the integrand does not depend on the integration variable {node.var}"
            )
        kind = "density" if body.kind == "density" else "scalar"
        return Type(kind, body.free - {node.var})
    if isinstance(node, SampleMean):
        body = infer(node.body, latent, observed)
        if node.var not in body.free:
            raise Unsupported(
                f"the average does not depend on the samples of {node.var}"
            )
        return Type("scalar", body.free - {node.var})
    if isinstance(node, Expectation):
        mv, mg = density_vars(node.measure, latent)
        if node.var not in mv:
            raise Unsupported(
                f"the expectation's measure is not a density of {node.var}"
            )
        body = infer(node.body, latent, observed)
        return Type("scalar", (body.free | set(mv) | set(mg)) - {node.var})
    if isinstance(node, KL):
        va, ga = measure_vars(node.a, latent, observed)
        vb, gb = measure_vars(node.b, latent, observed)
        if set(va) != set(vb):
            raise Unsupported(
                f"KL between densities of different variables ({','.join(va)}) "
                f"and ({','.join(vb)})"
            )
        return Type("scalar", frozenset(ga) | frozenset(gb))
    if isinstance(node, Entropy):
        _, g = density_vars(node.a, latent)
        return Type("scalar", frozenset(g))
    if isinstance(node, NamedDivergence):
        return Type("scalar", frozenset())
    if isinstance(node, Param) and node.index in ("1", "2"):
        return Type("scalar", frozenset())
    if isinstance(node, ELBO | Param):
        return Type("scalar", frozenset({observed}))
    if isinstance(node, Weight):
        return Type("scalar", frozenset({observed}))
    if isinstance(node, JointGrad):
        infer(node.body, latent, observed)
        return Type("scalar", frozenset({observed, latent}))
    if isinstance(node, NormalAt):
        free = set()
        for part in (node.point, node.mean, node.cov):
            free |= infer(part, latent, observed).free
        return Type("scalar", frozenset(free))
    if isinstance(node, Dim | Sym | Comp | CondMoment | Kronecker | DataCount
                  | SampleCount
                  | LabelCount):  # fmt: skip
        return Type("scalar", frozenset())
    if isinstance(node, LabelParam | Softmax):
        return Type("scalar", frozenset({latent}))
    if isinstance(node, VecVar):
        return Type("scalar", frozenset({node.name}))
    if isinstance(node, Transpose | Det | Trace | Norm | Diag | Tril | Chol):
        return Type("scalar", infer(node.arg, latent, observed).free)
    if isinstance(node, Defined | At):
        return infer(node.body, latent, observed)
    if isinstance(node, Max):
        ts = [infer(a, latent, observed) for a in node.args]
        return Type("scalar", frozenset().union(*(t.free for t in ts)))
    if isinstance(node, MatGrad | EntryGrad):
        return Type("scalar", infer(node.body, latent, observed).free)
    if isinstance(node, Elem):
        return Type("scalar", infer(node.base, latent, observed).free)
    if isinstance(node, IndexSum | IndexMax):
        return Type("scalar", infer(node.body, latent, observed).free)
    if isinstance(node, IWBound):
        free = {observed}
        if node.weight is not None:
            free |= infer(node.weight, latent, observed).free - {latent}
        return Type("scalar", frozenset(free))
    if isinstance(node, DataMean):
        return Type("scalar", infer(node.body, latent, observed).free - {observed})
    if isinstance(node, DataSum):
        body = infer(node.body, latent, observed)
        kind = "scalar" if body.kind == "log-density" else body.kind
        return Type(kind if node.product else body.kind, body.free - {observed})
    if isinstance(node, DimSum):
        return Type("scalar", infer(node.body, latent, observed).free)
    raise Unsupported(f"unknown node {type(node).__name__}")


def _positive_const(node):
    return isinstance(node, Const) or (isinstance(node, Number) and node.value > 0)


def describe(node):
    """A one-line rendering of ``node`` that shows how it was read."""
    if isinstance(node, Number):
        return f"{node.value:g}"
    if isinstance(node, Const):
        return node.name
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Density):
        deco = f"_{node.deco}" if node.deco else ""
        deco += f"_{node.index}" if node.index else ""
        if node.vars is None:
            return f"{node.symbol}{deco}"
        given = f"|{','.join(node.given)}" if node.given else ""
        args = ",".join(node.vars) + given
        at = f";theta^{node.at}" if node.at else ""
        return f"{node.symbol}{deco}({args.upper() if node.dataset else args}{at})"
    if isinstance(node, Grad):
        return f"grad_{node.group}[{describe(node.body)}]"
    if isinstance(node, Normal):
        return f"N({node.var}; {describe(node.mean)}, {describe(node.variance)})"
    if isinstance(node, Func):
        return f"{node.name}({describe(node.arg)})"
    if isinstance(node, Gaussian):
        return f"N({node.var}; {describe(node.mean)}, {describe(node.cov)})"
    if isinstance(node, NormalAt):
        return f"N({describe(node.point)}; {describe(node.mean)}, {describe(node.cov)})"
    if isinstance(node, Reparam):
        return "mu + sigma * epsilon" if node.diag else "g_phi(epsilon)"
    if isinstance(node, AtNoise):
        return f"{describe(node.body)} at z = {describe(node.value)}"
    if isinstance(node, AtExactQ):
        return f"{describe(node.body)} at q = p(z|x)"
    if isinstance(node, Add):
        out = []
        for i, (s, t) in enumerate(zip(node.signs, node.terms, strict=True)):
            text = describe(t)
            if i == 0:
                out.append(text if s > 0 else f"-{text}")
            else:
                out.append(f"{'+' if s > 0 else '-'} {text}")
        return "(" + " ".join(out) + ")"
    if isinstance(node, Mul):
        return "(" + " * ".join(describe(f) for f in node.factors) + ")"
    if isinstance(node, Div):
        return f"({describe(node.num)} / {describe(node.den)})"
    if isinstance(node, Pow):
        return f"{describe(node.base)}^{describe(node.exponent)}"
    if isinstance(node, Log):
        return f"log[{describe(node.arg)}]"
    if isinstance(node, Exp):
        return f"exp[{describe(node.arg)}]"
    if isinstance(node, Integral):
        return f"Integral d{node.var} [{describe(node.body)}]"
    if isinstance(node, Sum):
        return f"Sum_{node.index} [{describe(node.body)}]"
    if isinstance(node, SampleMean):
        return f"MC mean over {node.count} draws {node.var} ~ q [{describe(node.body)}]"
    if isinstance(node, Expectation):
        return f"E_{{{node.var} ~ {describe(node.measure)}}}[{describe(node.body)}]"
    if isinstance(node, KL):
        return f"KL({describe(node.a)} || {describe(node.b)})"
    if isinstance(node, Entropy):
        return f"H[{describe(node.a)}]"
    if isinstance(node, NamedDivergence):
        return f"D_{node.name}({describe(node.a)} || {describe(node.b)})"
    if isinstance(node, ELBO):
        at = f";theta^{node.at}" if node.at else ""
        if node.q is None and not at:
            return "ELBO"
        return f"ELBO({describe(node.q) if node.q is not None else 'q'}{at})"
    if isinstance(node, Param) and node.index in ("1", "2"):
        return f"{node.name}_{node.index}"
    if isinstance(node, Param):
        return f"{node.name}_q" + (f"[{node.index}]" if node.index else "")
    if isinstance(node, Dim):
        return "J"
    if isinstance(node, DataCount):
        return "N"
    if isinstance(node, SampleCount):
        return "K"
    if isinstance(node, IWBound):
        w = "p(x,z)/q(z|x)" if node.weight is None else describe(node.weight)
        return f"IW bound of {describe(node.count)} samples of [{w}]"
    if isinstance(node, DataMean):
        return f"Mean_{node.index}=1..N [{describe(node.body)}]"
    if isinstance(node, DataSum):
        op = "Prod" if node.product else "Sum"
        return f"{op}_{node.index}=1..N [{describe(node.body)}]"
    if isinstance(node, DimSum):
        return f"Sum_{node.index}=1..J [{describe(node.body)}]"
    if isinstance(node, Sym | VecVar):
        return node.name
    if isinstance(node, Comp):
        return f"{node.name}[{node.index}]"
    if isinstance(node, LabelParam):
        at = f";theta^{node.at}" if node.at else ""
        return f"{node.name}[z{at}]"
    if isinstance(node, Softmax):
        return f"softmax({describe(node.arg)})"
    if isinstance(node, LabelCount):
        return "K"
    if isinstance(node, Transpose):
        return f"{describe(node.arg)}^T"
    if isinstance(node, Det | Trace | Norm | Tril | Chol):
        name = {Det: "det", Trace: "tr", Norm: "norm", Tril: "tril",
                Chol: "chol"}[type(node)]  # fmt: skip
        return f"{name}[{describe(node.arg)}]"
    if isinstance(node, Diag):
        at = f" over {node.index}" if node.index else ""
        return f"diag[{describe(node.arg)}{at}]"
    if isinstance(node, Defined):
        return node.name
    if isinstance(node, Weight):
        return f"{node.name}_i"
    if isinstance(node, JointGrad):
        return f"d/dlog p(x,z)[{describe(node.body)}]"
    if isinstance(node, MatGrad):
        at = f"[{','.join(node.entry)}]" if node.entry else ""
        return f"d/d{node.name}{at}[{describe(node.body)}]"
    if isinstance(node, Elem):
        return f"{describe(node.base)}[{','.join(node.indices)}]"
    if isinstance(node, IndexMax):
        return f"Max_{node.index} [{describe(node.body)}]"
    if isinstance(node, EntryGrad):
        return f"d/d{node.name}[{node.index}][{describe(node.body)}]"
    if isinstance(node, Kronecker):
        return f"delta[{','.join(node.indices)}]"
    if isinstance(node, CondMoment):
        return f"{node.kind}[x | {node.index}]"
    if isinstance(node, IndexSum):
        upper = describe(node.upper) if node.upper is not None else "its range"
        return f"Sum_{node.index}=1..{upper} [{describe(node.body)}]"
    return repr(node)
