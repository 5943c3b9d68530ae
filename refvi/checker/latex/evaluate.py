"""Evaluate the typed intermediate form on one model instance, in signed log space.

Every value is a pair ``(la, s)``: ``log|v|`` and ``sign(v)``, arrays that
broadcast over the axes ``(n, Mx, Mz)`` -- the datum, the nodes of a bound x,
the nodes of a bound z (size 1 where a value does not vary). A product is a
sum of logs, a quotient a difference, a sum a signed logsumexp; so
``\\log \\frac{q}{p(x,z)}`` is ``log q - log p(x,z)`` and nothing underflows.
Integrals and expectations are sums over quadrature nodes with log-weights
(``Model.z_rule``/``Model.x_rule``); running the same equation at a lower
order (``level=1``) gives the error estimate.

The model is any object with the attributes of :class:`Model` (see
``models.py``). Which model density a LaTeX density names is decided by
:func:`resolve`, from the section's shorthands.
"""

import itertools
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from scipy.special import logsumexp

from refvi.checker.latex import ir, noise
from refvi.checker.latex import matrix as mx
from refvi.checker.latex.categorical_model import entry_gradient
from refvi.checker.latex.component_moments import conditional_moment
from refvi.checker.latex.derivatives import entry_count, matrix_gradient
from refvi.checker.latex.matrix import Mat
from refvi.checker.latex.parser import CONSTANTS
from refvi.checker.latex.table_derivatives import joint_gradient
from refvi.checker.latex.upstream import weights

#: Draws of q(z|x) per datum behind a Monte Carlo average.
MC_DRAWS = 4000
#: Step of the central differences of a gradient along a unit direction:
#: Richardson's truncation error is O(h^4) ~ 1e-12, the round-off ~ eps / h.
GRAD_STEP = 1e-3


def richardson(at, level):
    """The derivative at 0 of the function ``at`` of one step: central
    differences D(h) = (at(h) - at(-h)) / 2h refined by Richardson,
    (4 D(h/2) - D(h)) / 3, with h = GRAD_STEP at levels 0 and 2 and
    2 GRAD_STEP at levels 1 and 3, so the levels' difference is also the
    error estimate of the differences."""
    h = GRAD_STEP * (2.0 if level % 2 else 1.0)

    def central(step):
        return (at(step) - at(-step)) / (2 * step)

    return (4 * central(h / 2) - central(h)) / 3


#: Gauss-Hermite nodes per coordinate of an expectation over the noise
#: epsilon at levels 0, 1 and refined 2, 3 (level 1's difference is the
#: error estimate).
NOISE_NODES = (40, 30, 60, 50)


def _softplus(t):
    return np.logaddexp(0.0, t)


#: The functions that stand for an abstract f, g, h, by declared kind: each
#: line is checked with every one of its kind (a convex f with three strictly
#: convex functions, so a reversed Jensen inequality fails). They grow at most
#: linearly, so exp(f(z)) still has an expectation under a Gaussian.
FUNCTIONS = {
    "convex": (lambda t: _softplus(2 * t), lambda t: np.sqrt(1 + t**2) + 0.5 * t,
               lambda t: np.logaddexp(t, -t) - 0.3 * t),
    "concave": (lambda t: -_softplus(2 * t), lambda t: 0.5 * t - np.sqrt(1 + t**2),
                lambda t: 0.3 * t - np.logaddexp(t, -t)),
    "arbitrary": (lambda t: np.sin(2 * t) + t, lambda t: np.cos(t) + 0.5 * t,
                  lambda t: np.exp(-(t**2) / 2)),
}  # fmt: skip


#: How many functions stand for an abstract f in turn (each its own instance).
CHOICES = len(FUNCTIONS["arbitrary"])


#: The values a number K of importance samples takes in turn.
SAMPLE_COUNTS = (1, 2)
#: One sample of an importance-weighted bound is integrated by the trapezoid
#: rule in q's whitened coordinates on [-8, 8] with step 1 / IW_STEPS[level]
#: (log of a mean of weights is analytic only in a strip about as wide as
#: its log-weights' slope allows, where Gauss-Hermite converges slowly and
#: the trapezoid rule geometrically); its K samples take the product rule.
IW_STEPS = (4.0, 2.5, 8.0, 5.0)
#: The most nodes of the K-fold product rule of an importance-weighted bound.
IW_MAX_NODES = 3_000_000


class EvaluationError(Exception):
    """A value that cannot be computed (log of a negative number, ...)."""


class Model(Protocol):
    """What the evaluator needs from a setting instance (``models.py``).

    Attributes
    ----------
    label : str
        Setting name and seed, for reports.
    discrete : bool
        Whether the latent takes K values (integrals over it are sums).
    k, d : int
        Dimensions of z and x.
    gaussian : bool
        Whether every density of the instance is Gaussian.

    Methods
    -------
    log_density(kind, X, Z)
        Log-density ``kind`` ('prior', 'lik', 'joint', 'post', 'marginal', 'q',
        'agg', 'data', 'data2') at x points ``X`` (..., d) and z points ``Z`` (..., k)
        (discrete: integer labels (...,)), broadcasting the leading axes.
    z_rule(level) -> (Z, logw)
        Nodes (n, 1, M, k) and log-weights (n, 1, M) of a rule for the Lebesgue
        (discrete: counting) measure on z; level 1 is the lower order.
    x_rule(level) -> (X, logw)
        The same for x: (1, M, 1, d) and (1, M, 1).
    z_points() -> Z
        Test points (n, 1, M, k) for an equation in which z is free.
    x_data() -> X
        The data, (n, 1, 1, d).
    """


@dataclass(frozen=True)
class Shorthands:
    """What undecorated symbols mean in a section.

    ``q_z``: 'conditional' (q(z) is q(z|x)) or 'aggregate' (the aggregated
    posterior). ``p_x``: 'model' (p(x) is p_theta(x)) or 'data' (p_data(x)).
    ``rebound``: densities a display of the section defined (``rebind.py``),
    ((kind, variables, given, at), expression or None, why), latest last.
    """

    q_z: str = "conditional"
    p_x: str = "model"
    functions: tuple = ()  # (name, 'convex' | 'concave') of declared f, g, h
    rebound: tuple = ()


def resolve(d, sh, latent="z", observed="x"):
    """The model density named by the LaTeX density ``d``: (kind, vars)."""
    if d.symbol not in ("p", "q"):  # f, g: the densities of mixture_pair only
        raise ir.Unsupported(f"no density of the model is {ir.describe(d)}")
    if d.vars is None and d.symbol == "p":  # p alone: any of the model's densities
        raise ir.Unsupported("a bare p names no density: write p(z|x), p(z), ...")
    vars_, given = ir.density_vars(d, latent)
    v, g = frozenset(vars_), frozenset(given)
    z, x = frozenset({latent}), frozenset({observed})
    if d.symbol == "q" and d.deco == "opt":  # q^*: the optimum, the posterior
        if v == z and g <= x:
            return "post"
    elif d.symbol == "q":
        if v == z and g == x:
            return "q"
        if v == z and not g:
            return "agg" if sh.q_z == "aggregate" or d.deco == "agg" else "q"
    else:
        if d.deco in ("data", "D", "data2"):
            if v == x and not g:
                return d.deco if d.deco == "data2" else "data"
        elif v == z and not g:
            return "prior"
        elif v == x and g == z:
            return "lik"
        elif v == x | z and not g:
            return "joint"
        elif v == z and g == x:
            return "post"
        elif v == x and not g:
            return "data" if sh.p_x == "data" and not d.deco else "marginal"
    raise ir.Unsupported(f"no density of the model is {ir.describe(d)}")


def _bare(d, symbol):
    return (
        isinstance(d, ir.Density)
        and d.symbol == symbol
        and d.vars is None
        and not d.deco
    )


def _signed(v):
    v = np.asarray(v, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(np.abs(v)), np.sign(v)


def real(val):
    """The real value of a signed-log pair."""
    la, s = val
    return s * np.exp(la)


def _lse(vals, signs, axis=None):
    """Signed logsumexp of terms ``s_i exp(la_i)`` (stacked on ``axis``)."""
    la, s = vals, signs
    finite = np.where(s != 0, la, -np.inf)
    m = np.max(finite, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    total = np.sum(s * np.exp(finite - m), axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        out = m + np.log(np.abs(total))
    return out, np.sign(total)


@dataclass
class Scope:
    """Points of x and z in the current scope, and whether each is bound."""

    X: np.ndarray
    Z: np.ndarray | None
    x_bound: bool = False
    z_bound: bool = False
    eps: np.ndarray | None = None  # nodes (1, 1, M, k) of a bound noise epsilon


@dataclass
class Evaluator:
    """Evaluate IR nodes on ``model`` with shorthands ``sh`` at ``level``."""

    model: object
    sh: Shorthands = field(default_factory=Shorthands)
    level: int = 0
    latent: str = "z"
    observed: str = "x"
    dims: dict = field(default_factory=dict)  # \sum_j index -> its value

    estimate: tuple | None = None  # (standard error, draws) of a Monte Carlo side
    choice: int | None = None  # which functions stand for f, g, h (FUNCTIONS)

    def __post_init__(self):
        if self.choice is None:
            self.choice = getattr(self.model, "choice", 0)

    def fresh(self, model=None, sh=None):
        """A new evaluator at this one's level, variables, functions and
        bound indices (a copy of them), on ``model`` with shorthands ``sh``
        (by default this one's), carrying no Monte Carlo estimate: a body
        evaluated on a moved or substituted model."""
        return replace(self, model=self.model if model is None else model,
                       sh=self.sh if sh is None else sh, dims=dict(self.dims),
                       estimate=None)  # fmt: skip

    def value(self, node, free_z=False, components=()):
        """(la, s) of a top-level expression; z free means z at test points.

        ``components``: a free component index of the chain (``ir.Comp``):
        the value at every component, stacked along the first axis.

        A Monte Carlo average (``ir.SampleMean``) is a whole side: its
        standard error and number of draws are left in ``estimate``.
        """
        Z = self.model.z_points() if free_z else None
        scope = Scope(self.model.x_data(), Z)
        if ir.NOISE in ir.infer(node, self.latent, self.observed).free:
            if free_z:
                raise ir.Unsupported(
                    f"a line with a given draw of the noise and a free {self.latent}: "
                    "link them first, z_s = m + \\sigma \\odot \\varepsilon_s"
                )
            scope.eps = noise.drawn(self.model.k)  # a given draw: pointwise
        with np.errstate(over="ignore", invalid="ignore"):
            if isinstance(node, ir.SampleMean):
                return self._sample_mean(node, scope)
            if components:
                return self._per_component(node, scope, components)
            out = self.ev(node, scope)
            return self._number(out) if isinstance(out, Mat) and out.is_number else out

    def _per_component(self, node, sc, components):
        """The value at each value of the free component index, stacked."""
        counts = [range(self._count_or_one(node, i, sc)) for i in components]
        if all(len(c) == 0 for c in counts):  # a side without the free index
            v = self.ev(node, sc)
            return self._number(v) if isinstance(v, Mat) and v.is_number else v
        out = []
        for js in itertools.product(*counts):
            self.dims.update(zip(components, js, strict=True))
            v = self.ev(node, sc)
            out.append(self._number(v) if isinstance(v, Mat) and v.is_number else v)
        for index in components:
            del self.dims[index]
        if all(isinstance(v, Mat) for v in out):
            return Mat(_stack([v.a for v in out]))
        if any(isinstance(v, Mat) for v in out):
            raise ir.Unsupported("a line that is a matrix for some components only")
        return _stack([v[0] for v in out]), _stack([v[1] for v in out])

    def _count_or_one(self, node, index, sc):
        """``_component_count``, or 0 for a side that does not use the free
        index where the setting has no components (``\\max(-\\psi_j, c) =
        c``: the side is one value, the same at every entry)."""
        try:
            return self._component_count(node, index, sc)
        except ir.Unsupported:
            if any(index in ir.free_components(n) for n in _walk(node)):
                raise
            return 0

    def _component_count(self, node, index, sc=None):
        """How many values the component index ``index`` takes: the size of
        the entries it picks (a free entry index, ``entries.py``), of the
        family it indexes in ``node`` (``component_count``: f's or g's
        components), else the setting's one number of components. The entry
        index of an elementwise derivative (``\\partial \\psi_j``) takes the
        parameter's entries."""
        for n in _walk(node):
            if isinstance(n, ir.MatGrad) and index in n.entry:
                return entry_count(self.model, n.name, sc)
        sizes = {
            self.mat(n.base, sc).shape[k]
            for n in _walk(node)
            if isinstance(n, ir.Elem)
            for k, i in enumerate(n.indices)
            if i == index
        }
        if len(sizes) > 1:
            raise ir.Unsupported(f"the index {index} picks entries of two sizes")
        if sizes:
            return sizes.pop()
        by_family = getattr(self.model, "component_count", None)
        if by_family is not None:
            counts = {
                by_family(n.name if isinstance(n, ir.Comp) else n.symbol)
                for n in _walk(node)
                if isinstance(n, ir.Comp | ir.Density) and n.index == index
            }
            if len(counts) != 1:
                raise ir.Unsupported(
                    f"the index {index} picks "
                    + ("no component" if not counts else "components of two mixtures")
                )
            return counts.pop()
        count = getattr(self.model, "n_components", None)
        if count is None:
            raise ir.Unsupported(f"the {self.model.label} setting has no components")
        return count()

    def _sample_mean(self, node, sc):
        """The mean of ``node.body`` over MC_DRAWS draws of q(z|x) at each
        datum, with its standard error (sample standard deviation / sqrt n)."""
        if node.var == ir.NOISE and getattr(self.model, "seed", None) is not None:
            eps = noise.mc_draws(self.model.seed, MC_DRAWS, self.model.k)
            inner = Scope(sc.X, sc.Z, sc.x_bound, sc.z_bound, eps)
            v = real(self.num(node.body, inner))
            v = np.broadcast_to(v, np.broadcast_shapes(np.shape(v), (1, 1, MC_DRAWS)))
            return self._mean_of(v)
        draws = getattr(self.model, "q_draws", None)
        if draws is None or node.var != self.latent:
            raise ir.Unsupported(
                f"a Monte Carlo average over {node.var} needs draws of a Gaussian "
                "q(z|x) (the linear_gaussian and mixture_prior settings)"
            )
        inner = Scope(sc.X, draws(MC_DRAWS), sc.x_bound, True)
        return self._mean_of(
            np.broadcast_to(real(self.num(node.body, inner)), inner.Z.shape[:-1])
        )

    def _mean_of(self, v):
        """The mean of the draws ``v`` (axis 2) and its standard error."""
        mean = np.mean(v, axis=2, keepdims=True)
        se = np.std(v, axis=2, ddof=1, keepdims=True) / np.sqrt(MC_DRAWS)
        self.estimate = (se, MC_DRAWS)
        return _signed(mean)

    def _SampleMean(self, node, sc):
        raise ir.Unsupported(
            "a Monte Carlo average is compared as a whole side of \\approx"
        )

    # -- dispatch ------------------------------------------------------------
    def ev(self, node, sc):
        method = getattr(self, "_" + type(node).__name__)
        try:
            return method(node, sc)
        except mx.ShapeError as err:
            raise EvaluationError(str(err)) from None

    def num(self, node, sc):
        """The value of ``node`` where a number belongs (a 1 x 1 matrix is one)."""
        return self._number(self.ev(node, sc))

    @staticmethod
    def _number(v):
        if not isinstance(v, Mat):
            return v
        if not v.is_number:
            r, c = v.shape
            raise EvaluationError(f"a {r}x{c} matrix where a number belongs")
        return _signed(v.a[..., 0, 0])

    def mat(self, node, sc):
        """The value of ``node`` as a matrix (a number is a 1 x 1 one)."""
        v = self.ev(node, sc)
        return v if isinstance(v, Mat) else Mat(real(v)[..., None, None])

    # -- matrix notation (``matrix.py``) -----------------------------------------
    def _Sym(self, node, sc):
        symbol = getattr(self.model, "matrix_symbol", None)
        if symbol is None:
            raise ir.Unsupported(
                f"{node.name}: the {self.model.label.split('/')[0]} setting has no "
                "matrix notation"
            )
        value = symbol(node.name)
        return value if isinstance(value, Mat) else _signed(value)

    def _VecVar(self, node, sc):
        if (
            getattr(self.model, "pair", False)
            and node.index
            and (node.name != self.observed or node.index not in ("i", "n"))
        ):  # the gaussian setting's batch: its test points x_i
            raise ir.Unsupported(
                f"{node.name}_{node.index}: the gaussian setting's batch is x_i, "
                "its test points; it has no other indexed point"
            )
        points = sc.Z if node.name == self.latent else sc.X
        if points is None:
            raise ir.Unsupported(f"{node.name} is used outside its binder")
        if getattr(self.model, "discrete", False) and node.name == self.latent:
            raise ir.Unsupported(f"{node.name} is a label, not a vector")
        return Mat(np.asarray(points, dtype=np.float64)[..., :, None])

    def _Transpose(self, node, sc):
        return mx.transpose(self.mat(node.arg, sc))

    def _Det(self, node, sc):
        return mx.slogdet(self.mat(node.arg, sc))

    def _Trace(self, node, sc):
        return _signed(mx.trace(self.mat(node.arg, sc)))

    def _Norm(self, node, sc):
        return _signed(mx.norm(self.mat(node.arg, sc)))

    def _Diag(self, node, sc):
        if node.index is None:
            return mx.diag(self.mat(node.arg, sc))
        count = self._entry_range(node.arg, node.index, sc)
        entries = []
        for j in range(count):
            self.dims[node.index] = j
            entries.append(real(self.num(node.arg, sc)))
        del self.dims[node.index]
        shape = np.broadcast_shapes(*(np.shape(e) for e in entries))
        column = np.stack([np.broadcast_to(e, shape) for e in entries], axis=-1)
        return mx.diag(Mat(column[..., None]))

    def _Tril(self, node, sc):
        return mx.tril(self.mat(node.arg, sc))

    def _Chol(self, node, sc):
        return mx.cholesky(self.mat(node.arg, sc))

    def _Defined(self, node, sc):
        """A symbol defined in an earlier display: its right side, here; a
        failure names the definition's line. A right side free of the latent
        (a baseline b = F under E_q) is a constant in it: evaluated with the
        latent unbound, so its own integrals over z may run."""
        try:
            if (
                sc.z_bound
                and self.latent
                not in ir.infer(node.body, self.latent, self.observed).free
            ):
                sc = Scope(sc.X, None, sc.x_bound, False, sc.eps)
            return self.ev(node.body, sc)
        except ir.Unsupported as err:
            raise ir.Unsupported(
                f"{node.name} (defined at line {node.line}): {err}", err.token
            ) from None
        except EvaluationError as err:
            raise EvaluationError(
                f"{node.name} (defined at line {node.line}): {err}"
            ) from None

    def _Max(self, node, sc):
        """The larger of two values, entry by entry (``numpy.maximum``)."""
        a, b = (self.ev(arg, sc) for arg in node.args)
        if isinstance(a, Mat) or isinstance(b, Mat):
            a, b = self.mat(node.args[0], sc), self.mat(node.args[1], sc)
            if a.shape != b.shape and not (a.is_number or b.is_number):
                raise EvaluationError(
                    f"\\max of a {a.shape[0]}x{a.shape[1]} and a "
                    f"{b.shape[0]}x{b.shape[1]} matrix"
                )
            return Mat(np.maximum(a.a, b.a))
        return _signed(np.maximum(real(a), real(b)))

    def _At(self, node, sc):
        """An estimate's side at the parameters ``node.at`` of the EM step,
        when the model's variant declares estimates the M-step's."""
        if getattr(self.model, "variant", {}).get("estimates") != "m-step":
            raise ir.Unsupported(node.reason)
        base = getattr(self.model, "base", self.model)  # a version's own base
        model, self.model = self.model, base
        try:
            self.model = self._at(node.at)
            return self.ev(node.body, sc)
        finally:
            self.model = model

    def _Weight(self, node, sc):
        """An upstream weight per datum (``upstream.weights``)."""
        if sc.x_bound:
            raise ir.Unsupported(
                f"the upstream weight {node.name}_i inside an integral over x"
            )
        return _signed(weights(self.model, node.name)[:, None, None])

    def _JointGrad(self, node, sc):
        """The derivative in the log-joint table (``table_derivatives``)."""
        return joint_gradient(self, node, sc)

    def _MatGrad(self, node, sc):
        """The derivative of the body in the instance's parameter
        ``node.name``, entry by entry (``derivatives.matrix_gradient``); of
        an elementwise one, its entry at the free indices."""
        if not node.entry:
            return matrix_gradient(self, node, sc)
        # one derivative for every entry: remembered while the free entry
        # index runs (``_per_component``), keyed by everything else in scope
        others = tuple(sorted((k, v) for k, v in self.dims.items()
                              if k not in node.entry))  # fmt: skip
        key = (node, id(sc), self.level, others)
        memo = self.__dict__.setdefault("_entry_memo", {})
        if key not in memo:
            memo[key] = (sc, matrix_gradient(self, node, sc))  # sc: keeps id(sc)
        return _signed(mx.entry(memo[key][1], [self.dims[i] for i in node.entry]))

    def _EntryGrad(self, node, sc):
        """The derivative of the body in one entry of a parameter family
        (``categorical_model.entry_gradient``)."""
        return entry_gradient(self, node, sc)

    def _CondMoment(self, node, sc):
        """E[x | j] or Cov[x | j] (``component_moments.conditional_moment``)."""
        return conditional_moment(self, node, sc)

    def _Kronecker(self, node, sc):
        missing = [i for i in node.indices if i not in self.dims]
        if missing:
            raise ir.Unsupported(f"\\delta: the index {missing[0]} is bound by no sum")
        values = {self.dims[i] for i in node.indices}
        return _signed(np.full((1, 1, 1), 1.0 if len(values) == 1 else 0.0))

    def _Comp(self, node, sc):
        if node.index not in self.dims:
            raise ir.Unsupported(f"{node.name}_{node.index} outside its sum")
        symbol = getattr(self.model, "component_symbol", None)
        if symbol is None:
            raise ir.Unsupported(f"{node.name}_{node.index}: no components here")
        value = symbol(node.name, self.dims[node.index])
        return value if isinstance(value, Mat) else _signed(value)

    def _LabelParam(self, node, sc):
        """The parameter of component z at the scope's labels Z (n, Mx, Mz):
        a number or a matrix per point (``Model.label_parameter``, (K, ...))."""
        if sc.Z is None or not getattr(self.model, "discrete", False):
            raise ir.Unsupported(
                f"{ir.describe(node)}: a component's parameter needs a value of a "
                "discrete latent (the mixture settings)"
            )
        model = self._at(node.at)
        table = getattr(model, "label_parameter", None)
        if table is None:
            raise ir.Unsupported(f"{ir.describe(node)}: no component parameters here")
        values = table(node.name)[np.asarray(sc.Z, dtype=int)]
        if values.ndim == np.ndim(sc.Z):
            return _signed(values)
        return Mat(values[..., None] if values.ndim == np.ndim(sc.Z) + 1 else values)

    def _Softmax(self, node, sc):
        """arg(z) - log sum_z' exp(arg(z')) at the scope's labels, the sum
        over every value of the latent (``Model.z_rule``)."""
        if sc.Z is None or not getattr(self.model, "discrete", False):
            raise ir.Unsupported("softmax(...)_k needs a value of a discrete latent")
        Z_all, _ = self.model.z_rule(self.level)
        every = real(self.num(node.arg, Scope(sc.X, Z_all, sc.x_bound, True)))
        norm = logsumexp(every, axis=2, keepdims=True)
        arg = real(self.num(node.arg, sc))
        return arg - norm, np.ones_like(arg)

    def _Elem(self, node, sc):
        m = self.mat(node.base, sc)
        missing = [i for i in node.indices if i not in self.dims]
        if missing:
            raise ir.Unsupported(f"the index {missing[0]} is bound by no sum")
        return _signed(mx.entry(m, [self.dims[i] for i in node.indices]))

    def _IndexSum(self, node, sc):
        if node.upper is not None:
            upper = np.ravel(real(self.num(node.upper, sc)))
            count = int(np.round(upper[0]))
            if np.any(np.abs(upper - count) > 1e-9):
                raise ir.Unsupported("an index sum ends at a whole number")
        else:
            count = self._entry_range(node.body, node.index, sc)
        first = 0
        if node.lower is not None:  # \sum_{j=k+1}^{d}: 1-based, as written
            lower = np.ravel(real(self.num(node.lower, sc)))
            first = int(np.round(lower[0])) - 1
            if np.any(np.abs(lower - first - 1) > 1e-9) or first < 0:
                raise ir.Unsupported("an index sum starts at a whole number >= 1")
        terms, outer = [], self.dims.get(node.index)  # a free index of that name
        for j in range(first, count):
            self.dims[node.index] = j
            terms.append(self.num(node.body, sc))
        del self.dims[node.index]
        if outer is not None:
            self.dims[node.index] = outer
        if not terms:
            return _signed(0.0)
        shape = np.broadcast_shapes(*(np.shape(t[0]) for t in terms))
        la = np.stack([np.broadcast_to(t[0], shape) for t in terms])
        s = np.stack([np.broadcast_to(t[1], shape) for t in terms])
        out, sign = _lse(la, s, axis=0)
        return out[0], sign[0]

    def _IndexMax(self, node, sc):
        count = self._entry_range(node.body, node.index, sc)
        values, outer = [], self.dims.get(node.index)  # a sum's index of that name
        for j in range(count):
            self.dims[node.index] = j
            values.append(real(self.num(node.body, sc)))
        del self.dims[node.index]
        if outer is not None:
            self.dims[node.index] = outer
        shape = np.broadcast_shapes(*(np.shape(v) for v in values))
        return _signed(np.max([np.broadcast_to(v, shape) for v in values], axis=0))

    def _entry_range(self, body, index, sc):
        """The range of ``index`` in ``body``: the size of the entries it
        picks, or of the family of components it indexes."""
        if getattr(self.model, "component_count", None) is not None and any(
            isinstance(n, ir.Comp | ir.Density) and getattr(n, "index", "") == index
            for n in _walk(body)
        ):
            return self._component_count(body, index, sc)
        for node in _walk(body):
            if isinstance(node, ir.Elem) and index in node.indices:
                m = self.mat(node.base, sc)
                return mx.entry_range(m, node.indices.index(index))
            count = getattr(self.model, "n_components", None)
            if isinstance(node, ir.Comp) and node.index == index and count:
                return count()
        raise ir.Unsupported(f"\\sum_{index} without an upper bound picks no entries")

    def _Number(self, node, sc):
        return _signed(node.value)

    def _Const(self, node, sc):
        return _signed(CONSTANTS[node.name])

    def _Var(self, node, sc):
        if node.name == self.latent:
            if sc.Z is None:
                raise ir.Unsupported(f"{node.name} is used outside its binder")
            if self.model.discrete or sc.Z.shape[-1] != 1:
                raise ir.Unsupported(
                    f"the value of {node.name} is a number only for a 1-dimensional "
                    "continuous latent"
                )
            return _signed(sc.Z[..., 0])
        if sc.X.shape[-1] != 1:
            raise ir.Unsupported(f"the value of {node.name} is a vector")
        return _signed(sc.X[..., 0])

    def _Density(self, node, sc):
        if isinstance(node, ir.Gaussian):
            return self._gaussian(node, sc)
        if getattr(self.model, "pair", False):
            return self._pair_density(node, sc)
        if (
            node.symbol == "q"
            and node.vars is not None
            and not node.given
            and set(node.vars) == {self.latent, self.observed}
        ):
            return self._joint_q(node, sc)
        kind = resolve(node, self.sh, self.latent, self.observed)
        if self.sh.rebound:
            out = self._rebound(node, kind, sc)
            if out is not None:
                return out
        needs_z = kind not in ("marginal", "data", "data2")
        if needs_z and sc.Z is None:
            raise ir.Unsupported(f"{ir.describe(node)} needs a value of z")
        la = self._at(node.at).log_density(kind, sc.X, sc.Z)
        return la, np.ones_like(la)

    def _joint_q(self, node, sc):
        """q(x, z) = p_data(x) q(z|x): the data's distribution and the
        encoder (the mutual information I_q(x; z) is taken under it)."""
        data = ir.Density("p", (self.observed,), (), "data", at=node.at)
        enc = ir.Density("q", (self.latent,), (self.observed,), node.deco, at=node.at)
        a, _ = self._Density(data, sc)
        b, _ = self._Density(enc, sc)
        la = a + b
        return la, np.ones_like(la)

    def _rebound(self, node, kind, sc):
        """The value of a density the section defined (``rebind.py``): its
        defining expression, evaluated with the definitions made before it;
        None when ``node`` is not one of them."""
        vars_, given = ir.density_vars(node, self.latent)
        key = (kind, frozenset(vars_), frozenset(given), node.at)
        for i in range(len(self.sh.rebound) - 1, -1, -1):
            k, expr, why = self.sh.rebound[i]
            if k != key:
                continue
            if expr is None:
                raise ir.Unsupported(why)
            sh = replace(self.sh, rebound=self.sh.rebound[:i])
            la, s = self.fresh(sh=sh).num(expr, sc)
            if np.any(s <= 0):
                raise EvaluationError(
                    f"{ir.describe(node)} is defined as a value that is not positive"
                )
            return la, np.ones_like(la)
        return None

    def _Gaussian(self, node, sc):
        return self._gaussian(node, sc)

    def _gaussian(self, node, sc):
        """log N(v; mean, cov) of the vector v of ``node.var`` (a number mean
        is that number in every entry, a number or I covariance that times
        the identity)."""
        mean, cov = self.ev(node.mean, sc), self.ev(node.cov, sc)
        return self._vector_normal(node.var, mean, cov, sc, sized=True)

    def _vector_normal(self, var, mean, cov, sc, sized=False):
        """log N(v; mean, cov) of the vector v of ``var``: ``matrix.log_normal``;
        ``sized``: an I without its size takes the vector's (a KL's N(0, I))."""
        y = self._VecVar(ir.VecVar(var), sc)
        dim = y.shape[0]
        if sized and (isinstance(mean, mx.Eye) or isinstance(cov, mx.Eye)):
            mean = mean.expand(dim) if isinstance(mean, mx.Eye) else mean
            cov = cov.expand(dim) if isinstance(cov, mx.Eye) else cov
        if not isinstance(mean, Mat):
            mean = Mat(real(mean)[..., None, None] * np.ones((dim, 1)))
        if not isinstance(cov, Mat):
            cov = Mat(real(cov)[..., None, None] * np.eye(dim))
        la = mx.log_normal(y, mean, cov)
        return la, np.ones_like(la)

    def _at(self, at):
        """The model at the parameters ``at`` ('' the instance's theta; 'old',
        'new': the start and the end of an EM step, ``Model.version``)."""
        if not at:
            return self.model
        version = getattr(self.model, "version", None)
        if at == "vnew" and not getattr(self.model, "second_step", False):
            raise ir.Unsupported(
                "\\theta'': a second M-step (from a restricted q) exists in the "
                "em_* settings only"
            )
        if version is None:
            raise ir.Unsupported(
                f"\\theta^{{{at}}}: the {self.model.label.split('/')[0]} setting "
                "has no parameters at another value (linear_gaussian and mixture "
                "have)"
            )
        return version(at)

    def _pair_density(self, node, sc):
        """p or q of the ``gaussian`` setting (``models.PairModel``), or a
        mixture f, g of ``mixture_pair`` or its component: a density of the
        one variable it is written in."""
        if node.symbol in getattr(self.model, "mixtures", ()):
            return self._mixture_density(node, sc)
        (var, *more), given = ir.density_vars(node, self.latent)
        if node.symbol not in ("p", "q") or node.deco or given or more:
            raise ir.Unsupported(
                f"{ir.describe(node)}: the gaussian setting has two densities of "
                "one variable, p = N(mu_1, sigma_1^2) and q = N(mu_2, sigma_2^2)"
            )
        points = sc.Z if var == self.latent else sc.X
        if var not in (self.latent, self.observed) or points is None:
            raise ir.Unsupported(f"{ir.describe(node)} needs a value of {var}")
        la = self.model.log_pair(node.symbol, points)
        return la, np.ones_like(la)

    def _mixture_density(self, node, sc):
        (var,), _ = ir.density_vars(node, self.latent)
        points = sc.Z if var == self.latent else sc.X
        if var not in (self.latent, self.observed) or points is None:
            raise ir.Unsupported(f"{ir.describe(node)} needs a value of {var}")
        index = None
        if node.index:
            if node.index not in self.dims:
                raise ir.Unsupported(f"{ir.describe(node)} outside its sum")
            index = self.dims[node.index]
        la = self.model.log_mixture(node.symbol, index, points)
        return la, np.ones_like(la)

    def _NamedDivergence(self, node, sc):
        named = getattr(self.model, "named_divergence", None)
        if named is None or node.a.index or node.b.index:
            raise ir.Unsupported(
                f"{ir.describe(node)}: a divergence named D_{{{node.name}}} is "
                "one between the mixtures f and g (the mixture_pair setting)"
            )
        return _signed(named(node.name, node.a.symbol, node.b.symbol))

    def _Grad(self, node, sc):
        """The directional derivative of the body along the model's fixed
        random direction of ``node.group`` (``models.PerturbedModel``), by
        ``richardson``. The body is evaluated at the same points as here."""
        perturbed = getattr(self.model, "perturbed", None)
        if perturbed is None:
            raise ir.Unsupported(
                f"\\nabla_\\{node.group}: the {self.model.label.split('/')[0]} "
                "setting has no perturbable parameters here (linear_gaussian has)"
            )

        def at(t):
            return real(self.fresh(perturbed(node.group, t)).num(node.body, sc))

        return _signed(richardson(at, self.level))

    def _Normal(self, node, sc):
        """log N(v; m, s2) = -(log(2 pi s2) + (v - m)^2 / s2) / 2; a vector v,
        mean or covariance in matrix notation: ``matrix.log_normal``."""
        mean, var = self.ev(node.mean, sc), self.ev(node.variance, sc)
        if any(isinstance(p, Mat) and not p.is_number for p in (mean, var)):
            return self._vector_normal(node.var, mean, var, sc)
        v = real(self._Var(ir.Var(node.var), sc))
        m, s2 = real(self._number(mean)), real(self._number(var))
        if np.any(s2 <= 0):
            raise EvaluationError(
                "a normal density with a variance that is not positive"
            )
        la = -0.5 * (np.log(2 * np.pi * s2) + (v - m) ** 2 / s2)
        return la, np.ones_like(la)

    def _NormalAt(self, node, sc):
        """log N(point; mean, cov) of a point in matrix notation (a number
        point or mean is that number in every entry of the other's size)."""
        point, mean = self.ev(node.point, sc), self.ev(node.mean, sc)
        cov = self.mat(node.cov, sc)
        size = cov.shape[0] if cov.shape is not None else None
        if size is None:
            raise ir.Unsupported("a normal density whose covariance has no size")
        point, mean = (
            v
            if isinstance(v, Mat)
            else Mat(real(v)[..., None, None] * np.ones((size, 1)))
            for v in (point, mean)
        )
        la = mx.log_normal(point, mean, cov)
        return la, np.ones_like(la)

    def _Func(self, node, sc):
        """f(arg) with f the function ``choice`` of its kind (``FUNCTIONS``;
        g and h the next ones, so distinct names are distinct functions)
        applied to a . arg + b: a vector argument (z, the reparameterized
        z) is projected on a fixed direction a, so f stays convex (concave)."""
        if isinstance(node.arg, ir.Reparam):
            v = self._Reparam(node.arg, sc)
        elif node.arg == ir.Var(self.latent) and sc.Z is not None:
            if self.model.discrete:
                raise ir.Unsupported(f"{node.name}(z) of a discrete latent")
            v = sc.Z
        else:
            v = real(self.num(node.arg, sc))[..., None]
        kind = dict(self.sh.functions).get(node.name, "arbitrary")
        # f, g, h are different functions on one instance: g for f fails
        shift = "fgh".index(node.name) if node.name in "fgh" else 0
        h = FUNCTIONS[kind][(self.choice + shift) % len(FUNCTIONS[kind])]
        a = np.linspace(1.0, 0.4, v.shape[-1]) / np.sqrt(v.shape[-1])
        return _signed(h(v @ a + 0.2 * self.choice))

    def _Reparam(self, node, sc):
        """m + L epsilon (``diag``: m + sigma * epsilon) at the bound noise."""
        if sc.eps is None:
            raise ir.Unsupported(
                "the reparameterized z needs its noise bound: "
                "\\mathbb{E}_{p(\\epsilon)}[f(g_\\phi(\\epsilon))]"
            )
        q_scale = getattr(self.model, "q_scale", None)
        if q_scale is None:
            raise ir.Unsupported(
                f"the {self.model.label.split('/')[0]} setting has no Gaussian "
                "q(z|x) to reparameterize"
            )
        m, L = q_scale()  # (n, k), (n, k, k)
        if node.diag and not np.array_equal(L, np.einsum("...jj->...j", L)[..., None]
                                            * np.eye(L.shape[-1])):  # fmt: skip
            raise ir.Unsupported(
                "\\mu + \\sigma \\odot \\epsilon reparameterizes a diagonal q: "
                "declare q=diag (linear_gaussian(q=diag)) or write g_\\phi(\\epsilon)"
            )
        if node.diag:
            L = np.abs(L)
        return m[:, None, None, :] + np.einsum("nkl,abml->nbmk", L, sc.eps)

    def _AtExactQ(self, node, sc):
        """``node.body`` with q(z|x) the exact posterior (``bars.py``)."""
        exact_q = getattr(self.model, "exact_q", None)
        if exact_q is None:
            raise ir.Unsupported(
                "q = p(z|x) as a Gaussian q exists in the linear_gaussian and "
                "amortized settings"
            )
        return self.fresh(exact_q()).ev(node.body, sc)

    def _AtNoise(self, node, sc):
        """The density ``node.body`` at z = ``node.value`` (``noise.py``)."""
        Z = self._Reparam(node.value, sc)
        return self.ev(node.body, Scope(sc.X, Z, sc.x_bound, True, sc.eps))

    def _SampleCount(self, node, sc):
        count = getattr(self.model, "count", None)
        if count is None:
            raise ir.Unsupported("K, the number of samples, has no value here")
        return _signed(float(count))

    def _IWBound(self, node, sc):
        """E_{z_1..z_K iid q(z|x)}[log (1/K) sum_k w(z_k)]: one rule for a
        sample of q (Gauss-Hermite in q's whitened coordinates, IW_NODES per
        coordinate; every value of a discrete z), and its K-fold product."""
        K = real(self.num(node.count, sc))  # exp(log 3) is 3 within rounding
        if np.size(K) != 1 or K.item() < 0.5 or abs(K.item() - round(K.item())) > 1e-9:
            raise EvaluationError("the number of samples is not a positive integer")
        K = round(K.item())
        Z, logq = self._one_sample_rule(sc)
        if logq.shape[-1] ** K > IW_MAX_NODES:
            raise ir.Unsupported(
                f"an importance-weighted bound of {K} samples of a "
                f"{self.model.k}-dimensional z (a {K * self.model.k}-dimensional "
                "integral) is too large here"
            )
        inner = Scope(sc.X, Z, sc.x_bound, True)
        if node.weight is None:
            joint = ir.Density("p", (self.observed, self.latent), ())
            q = ir.Density("q", (self.latent,), (self.observed,))
            weight = ir.Div(joint, q)
        else:
            weight = node.weight
        la, s = self.num(weight, inner)
        if np.any(s <= 0):
            raise EvaluationError("an importance weight that is not positive")
        n, M = max(np.shape(la)[0], Z.shape[0]), logq.shape[-1]
        la = np.broadcast_to(la, (n, 1, M)).reshape(n, M)
        logq = np.broadcast_to(logq, (n, 1, M)).reshape(n, M)
        grid_w, grid_l = np.zeros((n,) + (1,) * K), None
        for j in range(K):  # axis j + 1 holds sample j
            shape = (n,) + (1,) * j + (M,) + (1,) * (K - 1 - j)
            grid_w = grid_w + logq.reshape(shape)
            lj = la.reshape(shape)
            grid_l = lj if grid_l is None else np.logaddexp(grid_l, lj)
        bound = grid_l - np.log(K)
        value = np.sum(np.exp(grid_w) * bound, axis=tuple(range(1, K + 1)))
        return _signed(value[:, None, None])

    def _one_sample_rule(self, sc):
        """Nodes (n, 1, M, k) and log-weights (n, 1, M) of q(z|x) as a measure."""
        if self.model.discrete:
            Z, _ = self.model.z_rule(self.level)
            q = ir.Density("q", (self.latent,), (self.observed,))
            return Z, self._Density(q, Scope(sc.X, Z, sc.x_bound, True))[0]
        q_scale = getattr(self.model, "q_scale", None)
        if q_scale is None:
            raise ir.Unsupported("an importance-weighted bound needs a Gaussian q(z|x)")
        m, L = q_scale()
        k = m.shape[-1]
        h = 1.0 / IW_STEPS[self.level]
        t = np.arange(-8.0, 8.0 + h / 2, h)
        eps = np.stack([g.ravel() for g in np.meshgrid(*[t] * k, indexing="ij")], -1)
        logw = (
            k * np.log(h) - 0.5 * np.sum(eps**2, axis=-1) - k * 0.5 * np.log(2 * np.pi)
        )
        Z = m[:, None, None, :] + np.einsum("nkl,ml->nmk", L, eps)[:, None]
        return Z, logw[None, None, :]

    def _Add(self, node, sc):
        vals = [self.ev(t, sc) for t in node.terms]
        if any(isinstance(v, Mat) and not v.is_number for v in vals):
            terms = [v if isinstance(v, Mat) else Mat(real(v)[..., None, None])
                     for v in vals]  # fmt: skip
            return mx.add(terms, node.signs)
        vals = [self._number(v) for v in vals]
        shape = np.broadcast_shapes(*(v[0].shape for v in vals))
        la = np.stack([np.broadcast_to(v[0], shape) for v in vals])
        s = np.stack(
            [
                np.broadcast_to(v[1] * g, shape)
                for v, g in zip(vals, node.signs, strict=True)
            ]
        )
        out, sign = _lse(la, s, axis=0)
        return out[0], sign[0]

    def _Mul(self, node, sc):
        vals = [self.ev(f, sc) for f in node.factors]
        if any(isinstance(v, Mat) for v in vals):
            return self._matrix_product(vals)
        la, s = 0.0, 1.0
        for fa, fs in vals:
            la, s = la + fa, s * fs
        return la, s

    def _matrix_product(self, vals):
        """Numbers scale, matrices multiply in order (``W z``, ``x^\\top A x``)."""
        acc, coef = None, 1.0
        for v in vals:
            if isinstance(v, Mat) and not (v.is_number and acc is None):
                acc = v if acc is None else mx.matmul(acc, v)
            else:
                coef = coef * real(self._number(v))
        out = (
            mx.scale(acc, coef)
            if acc is not None
            else Mat(np.asarray(coef)[..., None, None])
        )
        return self._number(out) if out.is_number else out

    def _Div(self, node, sc):
        num, den = self.ev(node.num, sc), self.num(node.den, sc)
        if isinstance(num, Mat):
            if np.any(den[1] == 0):
                raise EvaluationError("division by zero")
            return mx.scale(num, 1.0 / real(den))
        na, ns = num
        da, ds = den
        if np.any(ds == 0):
            raise EvaluationError("division by zero")
        return na - da, ns * ds

    def _Pow(self, node, sc):
        base = self.ev(node.base, sc)
        r = real(self.num(node.exponent, sc))
        if isinstance(base, Mat) and not base.is_number:
            if np.size(np.unique(r)) != 1:
                raise ir.Unsupported("a matrix to a power that varies")
            return mx.power(base, float(np.ravel(r)[0]))
        ba, bs = self._number(base)
        if np.any(bs < 0) and not np.all(r == np.round(r)):
            raise EvaluationError("a negative number to a non-integer power")
        sign = np.where(bs < 0, np.where(np.round(r) % 2 == 0, 1.0, -1.0), bs)
        return ba * r, sign

    def _Log(self, node, sc):
        la, s = self.num(node.arg, sc)
        if np.any(s <= 0):
            raise EvaluationError("log of a value that is not positive")
        return _signed(la)

    def _Exp(self, node, sc):
        v = real(self.num(node.arg, sc))
        return v, np.ones_like(v)

    def _Param(self, node, sc):
        if node.index is not None and node.index.isdigit():
            pair_parameter = getattr(self.model, "pair_parameter", None)
            if pair_parameter is None:
                raise ir.Unsupported(
                    f"\\{node.name}_{node.index}: parameters indexed 1, 2 are those "
                    "of the two Gaussians of the gaussian setting"
                )
            value = pair_parameter(node.name, int(node.index))
            return _signed(np.full((1, 1, 1), value))
        gaussian_q = getattr(self.model, "gaussian_q", None)
        if gaussian_q is None:
            raise ir.Unsupported(
                f"{ir.describe(node)}: the q of {self.model.label.split('/')[0]} "
                "has no Gaussian parameters"
            )
        m, s = gaussian_q()  # (n, k) each
        if node.index is None:
            if m.shape[1] != 1:
                raise ir.Unsupported(
                    f"\\{node.name} of a {m.shape[1]}-dimensional q: index it "
                    f"(\\{node.name}_j) and sum over j"
                )
            j = 0
        else:
            j = self.dims[node.index]
        value = (m if node.name == "mu" else s)[:, j]
        return _signed(value[:, None, None])

    def _LabelCount(self, node, sc):
        count = getattr(self.model, "K", None)
        if count is None or not getattr(self.model, "discrete", False):
            raise ir.Unsupported("K, the number of components, has no value here")
        return _signed(float(count))

    def _Dim(self, node, sc):
        return _signed(float(self.model.k))

    def _DimSum(self, node, sc):
        terms = []
        for j in range(self.model.k):
            self.dims[node.index] = j
            terms.append(self.num(node.body, sc))
        del self.dims[node.index]
        shape = np.broadcast_shapes(*(t[0].shape for t in terms))
        la = np.stack([np.broadcast_to(t[0], shape) for t in terms])
        s = np.stack([np.broadcast_to(t[1], shape) for t in terms])
        out, sign = _lse(la, s, axis=0)
        return out[0], sign[0]

    def _DataCount(self, node, sc):
        return _signed(float(self.model.x_data().shape[0]))

    def _DataMean(self, node, sc):
        """The mean over the data: where the data are a distribution
        (``Model.data_distribution``), the expectation under p_data(x)."""
        if getattr(self.model, "data_distribution", False):
            data = ir.Density("p", (self.observed,), (), "data")
            return self._expect(data, lambda inner: self.num(node.body, inner),
                                self.observed, sc)  # fmt: skip
        la, s = self._DataSum(ir.DataSum(node.body, node.index), sc)
        return la - np.log(self.model.x_data().shape[0]), s

    def _DataSum(self, node, sc):
        """The sum (a product: of a density) over the instance's data of the
        body's values at each datum x_i (axis 0), with a free z at the same
        points for every datum."""
        if sc.x_bound:
            raise ir.Unsupported(
                f"a sum over the data (\\sum_{node.index}) inside an integral over x"
            )
        if getattr(self.model, "data_distribution", False):
            raise ir.Unsupported(
                f"a sum over the data (\\sum_{node.index}) where the data are a "
                "distribution p_data(x): only their mean \\frac{1}{N}\\sum_i "
                "(the expectation under p_data) has a value"
            )
        n = self.model.x_data().shape[0]
        body = self.ev(node.body, sc)
        if isinstance(body, Mat) and not body.is_number and not node.product:
            a = body.a  # a vector or matrix per datum: summed entry by entry
            return Mat(np.sum(np.broadcast_to(a, (n,) + a.shape[1:]), axis=0,
                              keepdims=True))  # fmt: skip
        la, s = self._number(body)
        shape = (n,) + np.broadcast_shapes(np.shape(la), np.shape(s))[1:]
        la, s = np.broadcast_to(la, shape), np.broadcast_to(s, shape)
        if node.product:
            return np.sum(la, axis=0, keepdims=True), np.prod(s, axis=0, keepdims=True)
        return _lse(la, s, axis=0)

    # -- binders ---------------------------------------------------------------
    def _bind(self, var, sc):
        """A scope with ``var`` bound to quadrature nodes, and the log-weights."""
        if var == self.latent:
            if sc.z_bound:
                raise ir.Unsupported(
                    f"{var} is bound twice (nested integrals over {var})"
                )
            Z, logw = self.model.z_rule(self.level)
            return Scope(sc.X, Z, sc.x_bound, True), logw, 2
        if var == self.observed:
            if sc.x_bound:
                raise ir.Unsupported(
                    f"{var} is bound twice (nested integrals over {var})"
                )
            X, logw = self.model.x_rule(self.level)
            return Scope(X, sc.Z, True, sc.z_bound), logw, 1
        raise ir.Unsupported(f"integration over the undeclared variable {var}")

    def _integrate(self, body_fn, var, sc):
        inner, logw, axis = self._bind(var, sc)
        la, s = body_fn(inner)
        shape = np.broadcast_shapes(np.shape(la), np.shape(logw))
        la = np.broadcast_to(la + logw, shape)
        s = np.broadcast_to(s, shape)
        return _lse(la, s, axis=axis)

    def _Integral(self, node, sc):
        return self._integrate(lambda inner: self.num(node.body, inner), node.var, sc)

    def _Sum(self, node, sc):
        if not self.model.discrete:
            raise ir.Unsupported(f"\\sum_{node.index} over a continuous latent")
        return self._integrate(lambda inner: self.num(node.body, inner), node.var, sc)

    def _measure(self, d, sc):
        """(log, sign) of a density taken as a measure: a density, or a
        density written as an expression (``ir.measure_vars``)."""
        if isinstance(d, ir.Density):
            return self._Density(d, sc)
        la, s = self.num(d, sc)
        if np.any(s <= 0):
            raise EvaluationError(f"{ir.describe(d)} is not positive: not a density")
        return la, s

    def _expect(self, measure, body_fn, var, sc):
        def weighted(inner):
            ma, _ = self._measure(measure, inner)
            ba, bs = body_fn(inner)
            return ma + ba, bs

        return self._integrate(weighted, var, sc)

    def _Expectation(self, node, sc):
        if node.var == ir.NOISE:
            return self._noise_expectation(node, sc)
        return self._expect(
            node.measure, lambda inner: self.num(node.body, inner), node.var, sc
        )

    def _noise_expectation(self, node, sc):
        """E_{p(epsilon)}[body], epsilon ~ N(0, I_k): the product Gauss-Hermite
        rule of NOISE_NODES[level] nodes per coordinate (k <= 2)."""
        m = node.measure
        if m.symbol != "p" or m.vars != (ir.NOISE,) or m.given or m.deco:
            raise ir.Unsupported("the noise's measure is p(\\epsilon) = N(0, I)")
        if sc.eps is not None:
            raise ir.Unsupported("\\epsilon is bound twice")
        k = self.model.k
        if k > 2:
            raise ir.Unsupported(f"an expectation over epsilon in k = {k} > 2 dims")
        t, w = np.polynomial.hermite_e.hermegauss(NOISE_NODES[self.level])
        grids = np.meshgrid(*[t] * k, indexing="ij")
        nodes = np.stack([g.ravel() for g in grids], axis=-1)
        logw = np.sum(
            np.stack(np.meshgrid(*[np.log(w / np.sqrt(2 * np.pi))] * k,
                                 indexing="ij"), -1).reshape(-1, k), axis=-1
        )  # fmt: skip
        inner = Scope(sc.X, sc.Z, sc.x_bound, sc.z_bound, nodes[None, None])
        la, s = self.num(node.body, inner)
        shape = np.broadcast_shapes(np.shape(la), (1, 1, logw.size))
        la = np.broadcast_to(la, shape) + logw
        return _lse(la, np.broadcast_to(s, shape), axis=2)

    def _KL(self, node, sc):
        (var,), _ = ir.measure_vars(node.a, self.latent, self.observed)
        if (
            isinstance(node.b, ir.Density)
            and _bare(node.b, "p")
            and not getattr(self.model, "pair", False)
        ):
            # Bishop's KL(q || p): the posterior of the latent given the data
            node = ir.KL(node.a, ir.Density("p", (var,), (self.observed,)))

        def log_ratio(inner):
            a, _ = self._measure(node.a, inner)
            b, _ = self._measure(node.b, inner)
            return _signed(a - b)

        return self._expect(node.a, log_ratio, var, sc)

    def _Entropy(self, node, sc):
        (var,), _ = ir.density_vars(node.a, self.latent)

        def minus_log(inner):
            a, _ = self._Density(node.a, inner)
            return _signed(-a)

        return self._expect(node.a, minus_log, var, sc)

    def _ELBO(self, node, sc):
        if node.q is not None and node.q.vars is not None:
            q = node.q
        else:  # a bare q, q^*: of the latent given the datum
            deco = "opt" if node.q is not None and node.q.deco == "opt" else ""
            q = ir.Density("q", (self.latent,), (self.observed,), deco)
        joint = ir.Density("p", (self.observed, self.latent), (), "", at=node.at)

        def log_ratio(inner):
            a, _ = self._Density(joint, inner)
            b, _ = self._Density(q, inner)
            return _signed(a - b)

        return self._expect(q, log_ratio, self.latent, sc)


def _stack(arrays):
    """Arrays over (n, ...) concatenated along the first axis, each broadcast
    to the shape they share (the values of a line at each component)."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    return np.concatenate([np.broadcast_to(a, shape) for a in arrays], axis=0)


def _walk(node):
    """``node`` and every node inside it (dataclass fields, tuples)."""
    yield node
    for value in getattr(node, "__dict__", {}).values():
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if hasattr(item, "__dataclass_fields__"):
                yield from _walk(item)
