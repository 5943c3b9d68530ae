"""The objects a derivation's check expressions are evaluated against.

A *setting* (``refvi.checker.settings``) turns a seed into an ``Instance``: a
random member of a model family together with the names its math uses. This
module holds the pieces every setting shares:

- ``Fn``: a function of the latent variable z with arithmetic, so that
  ``log_q - log_joint`` is again a function of z and checks read like the
  LaTeX. Continuous z is passed as an array of points of shape (n, m, k)
  (point j for datum i); discrete z as integer labels of shape (n, m). An
  ``Fn`` returns shape (n, m).
- expectation and integration operators built from Gauss–Hermite rules
  (``refvi.verify.quadrature``), refined under an error estimate and returning
  a ``Measured`` value (``measure``), or exact sums over the K values of a
  discrete z.

Nothing here knows about models; ``settings`` builds instances from them.
"""

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy.special import logsumexp

from refvi.checker.limits import check_draws
from refvi.checker.measured import Measured, current_target
from refvi.gaussian import _log_prob_chol
from refvi.verify.montecarlo import mc_mean
from refvi.verify.quadrature import gauss_hermite_rule

CONTINUOUS = "continuous"
DISCRETE = "discrete"


class Fn:
    """A function of z that supports +, -, *, /, ** and unary - with scalars,
    per-datum arrays (n,), other ``Fn`` and plain callables, and NumPy ufuncs
    (``np.exp(log_q)`` is the density q as an ``Fn``).

    Parameters
    ----------
    f : callable
        ``f(z)`` returning an array of shape (n, m) for z of shape (n, m, k)
        (continuous) or (n, m) (discrete labels).
    name : str
        Shown in error messages.
    """

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """``np.exp(log_q)``, ``array - log_q``: NumPy ufuncs give an ``Fn``."""
        if method != "__call__" or kwargs:
            return NotImplemented
        args = [a if callable(a) else _per_datum_constant(a) for a in inputs]

        def f(z):
            return ufunc(*[a(z) if callable(a) else a for a in args])

        label = ", ".join(a.name if isinstance(a, Fn) else "c" for a in inputs)
        return Fn(f, f"{ufunc.__name__}({label})")

    def __init__(self, f, name="f"):
        self.f = f
        self.name = name

    def __call__(self, z):
        return np.asarray(self.f(z), dtype=np.float64)

    def __repr__(self):
        return f"Fn({self.name})"

    def _binary(self, other, op, symbol, reflected=False):
        if callable(other):
            g = other if isinstance(other, Fn) else Fn(other, "lambda")
            first, second = (g, self) if reflected else (self, g)
            return Fn(
                lambda z: op(first(z), second(z)),
                f"({first.name} {symbol} {second.name})",
            )
        value = _per_datum_constant(other)
        if reflected:
            return Fn(lambda z: op(value, self(z)), f"(c {symbol} {self.name})")
        return Fn(lambda z: op(self(z), value), f"({self.name} {symbol} c)")

    def __add__(self, other):
        return self._binary(other, np.add, "+")

    def __radd__(self, other):
        return self._binary(other, np.add, "+", reflected=True)

    def __sub__(self, other):
        return self._binary(other, np.subtract, "-")

    def __rsub__(self, other):
        return self._binary(other, np.subtract, "-", reflected=True)

    def __mul__(self, other):
        return self._binary(other, np.multiply, "*")

    def __rmul__(self, other):
        return self._binary(other, np.multiply, "*", reflected=True)

    def __truediv__(self, other):
        return self._binary(other, np.divide, "/")

    def __rtruediv__(self, other):
        return self._binary(other, np.divide, "/", reflected=True)

    def __pow__(self, other):
        return self._binary(other, np.power, "**")

    def __neg__(self):
        return Fn(lambda z: -self(z), f"-{self.name}")

    def __pos__(self):
        return self


def _per_datum_constant(value):
    """A constant in an ``Fn`` expression; one value per datum (n,) becomes
    (n, 1) so that it broadcasts over the points of each datum."""
    value = np.asarray(value, dtype=np.float64)
    return value[:, None] if value.ndim == 1 else value


def as_fn(f, what):
    """``f`` as an ``Fn``: an ``Fn`` or a callable of z; otherwise TypeError."""
    if isinstance(f, Fn):
        return f
    if callable(f):
        return Fn(f, "lambda")
    raise TypeError(f"{what} takes a function of z (an Fn or a lambda); got {f!r}")


def _check_values(values, what):
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(
            f"{what}: the function must return shape (n, m); got {values.shape}"
        )
    return values


@lru_cache(maxsize=32)
def standard_rule(order, k):
    """The Gauss–Hermite rule of N(0, I_k), computed once per (order, k)."""
    nodes, weights = gauss_hermite_rule(order, k)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


#: The budget of ``GaussianRule.measure``: the highest Gauss–Hermite order per
#: coordinate a refined rule may reach, and its most nodes per datum (so
#: orders up to 2000, 447, 58, 21 for k = 1, 2, 3, 4; each step raises the
#: order by half and the last step that fits is the last taken).
MAX_ORDER = 2000
MAX_NODES = 2 * 10**5


def _lower_order(order):
    """The order compared with ``order`` for its first error estimate."""
    return order - max(1, order // 3)


def refine(expect_at, order, k, max_nodes=MAX_NODES, first=None):
    """A Gauss–Hermite expectation refined under its error estimate (a
    ``Measured``): the refinement of every operator with error control.

    ``expect_at(order)`` is the rule's value (an array) at ``order`` nodes per
    coordinate of a k-dimensional rule. The value at ``order`` is compared
    with the value at a lower order (``order - order // 3``); while the
    difference is above the refinement target (``measured.current_target()``,
    relative above 1) the order is raised by half and compared with the
    previous one, up to ``MAX_ORDER`` per coordinate and ``max_nodes`` nodes.
    A rule that meets the target reports its last difference (for a
    converging rule it bounds the error of the lower of the two orders, and so
    of the value). An entry whose rule spends the budget without meeting the
    target has an infinite error: the rule has not shown that it converges
    (an integrand with a kink, say, whose error alternates in sign with the
    parity of the order, makes the last difference miss the error), and the
    judge reports its line undetermined. ``first``: the value at ``order``
    and its difference from the lower order, when the caller has them.
    """
    budget = min(MAX_ORDER, int(max_nodes ** (1 / k)))
    target = current_target()
    if first is None:
        previous = expect_at(_lower_order(order))
        value = expect_at(order)
        difference = np.abs(value - previous)
    else:
        value, difference = first
    while True:
        met = difference <= target * np.maximum(1.0, np.abs(value))
        higher = -(-3 * order // 2)
        if np.all(met) or higher > budget:
            break
        previous = value
        value, order = expect_at(higher), higher
        difference = np.abs(value - previous)
    return Measured(value, np.where(met, difference, np.inf))


class GaussianRule:
    """Expectation under per-datum Gaussians N(mean_i, L_i L_i^T) by a
    tensor Gauss–Hermite rule of the given order (exact for polynomials of
    degree < 2 * order).

    Parameters
    ----------
    mean : ndarray, shape (n, k)
    L : ndarray, shape (n, k, k)
        Lower Cholesky factors.
    order : int
        Nodes per dimension of ``expect`` and of the first rule of ``measure``.
    """

    def __init__(self, mean, L, order):
        self.mean = mean
        self.L = L
        self.order = order
        self.nodes, self.weights = standard_rule(order, mean.shape[1])
        self.points = self._points(self.nodes)

    def _points(self, nodes):
        """z_ij = mean_i + L_i u_j, shape (n, J, k)."""
        return self.mean[:, None, :] + np.einsum("ikl,jl->ijk", self.L, nodes)

    def expect(self, f, what="E", order=None, integral=False):
        """sum_j w_j f(z_ij), shape (n,), at ``order`` (default the rule's).

        With ``integral``: sum_j w_j f(z_ij) / N_i(z_ij) = int f(z) dz, the
        factor w_j / N_i(z_ij) formed in logs (w_j underflows far out, where
        1 / N_i overflows).
        """
        points, weights = self.points, self.weights
        if order is not None and order != self.order:
            nodes, weights = standard_rule(order, self.mean.shape[1])
            points = self._points(nodes)
        values = _check_values(as_fn(f, what)(points), what)
        if not integral:
            return values @ weights
        with np.errstate(divide="ignore"):
            log_w = np.log(weights)
        factor = np.exp(log_w - self.log_density(points))
        return np.sum(values * factor, axis=1)

    def measure(self, f, what="E", integral=False, max_nodes=MAX_NODES):
        """``expect`` with an error estimate (a ``Measured``, shape (n,)),
        refined from the rule's order by :func:`refine` (at most
        ``max_nodes`` nodes per datum)."""
        f = as_fn(f, what)
        k = self.mean.shape[1]
        return refine(
            lambda order: self.expect(f, what, order, integral), self.order, k,
            max_nodes,
        )  # fmt: skip

    def log_density(self, z):
        """log N(z_ij | mean_i, Sigma_i) for points z (n, m, k), shape (n, m)."""
        return np.stack(
            [_log_prob_chol(z[i], self.mean[i], self.L[i]) for i in range(len(z))]
        )

    def draw(self, rng, size):
        """``size`` draws per datum, z_ij = mean_i + L_i eps_ij, shape (n, size, k)."""
        eps = rng.standard_normal((self.mean.shape[0], size, self.mean.shape[1]))
        return self.mean[:, None, :] + np.einsum("ikl,ijl->ijk", self.L, eps)


class MixtureRule:
    """Expectation under per-datum Gaussian mixtures sum_c w_ic N(m_ic, S_ic),
    as the weighted sum of one Gauss–Hermite rule per component.

    Parameters
    ----------
    log_w : ndarray, shape (n, C)
        Log mixture weights per datum.
    means : ndarray, shape (n, C, k)
    L : ndarray, shape (n, C, k, k)
        Lower Cholesky factors of the component covariances.
    """

    def __init__(self, log_w, means, L, order):
        self.log_w = log_w
        self.rules = [
            GaussianRule(means[:, c], L[:, c], order) for c in range(log_w.shape[1])
        ]

    def expect(self, f, what="E"):
        weights = np.exp(self.log_w)
        return sum(
            weights[:, c] * rule.expect(f, what) for c, rule in enumerate(self.rules)
        )

    def measure(self, f, what="E"):
        """The weighted sum of each component's ``GaussianRule.measure``."""
        weights = np.exp(self.log_w)
        return sum(
            weights[:, c] * rule.measure(f, what) for c, rule in enumerate(self.rules)
        )

    def log_density(self, z):
        comps = [rule.log_density(z) for rule in self.rules]
        return logsumexp(np.stack(comps, -1) + self.log_w[:, None, :], axis=-1)


class DiscreteRule:
    """Exact sums over the K values of a discrete z with per-datum
    probabilities ``exp(log_p)`` (n, K)."""

    def __init__(self, log_p):
        self.log_p = log_p
        n, K = log_p.shape
        self.points = np.broadcast_to(np.arange(K), (n, K))

    def expect(self, f, what="E"):
        values = _check_values(as_fn(f, what)(self.points), what)
        return np.sum(np.exp(self.log_p) * values, axis=1)

    def measure(self, f, what="E"):
        """The exact sum (``expect``): a plain array, no error beyond rounding."""
        return self.expect(f, what)

    def log_density(self, z):
        return np.take_along_axis(self.log_p, z, axis=1)

    def draw(self, rng, size):
        """``size`` labels per datum by inverting the CDF, shape (n, size)."""
        cdf = np.cumsum(np.exp(self.log_p), axis=1)
        u = rng.uniform(size=(self.log_p.shape[0], size, 1))
        return np.minimum(np.sum(u > cdf[:, None, :], axis=2), self.log_p.shape[1] - 1)

    def sum(self, f, what="integral"):
        """sum_z f(z) over the K values, shape (n,): the integral of a discrete z."""
        return np.sum(_check_values(as_fn(f, what)(self.points), what), axis=1)


def table_fn(table, name):
    """A function of a discrete z given by its table of values (n, K)."""
    return Fn(lambda z: np.take_along_axis(table, z, axis=1), name)


class Estimate:
    """A Monte Carlo mean with its standard error, shapes (n,).

    Adding, subtracting or multiplying by an exact value (scalar or array)
    shifts or scales the mean and scales the standard error, so
    ``log_px - MC_q(log_joint - log_q)`` is again an estimate. Two estimates
    do not combine (their draws may be dependent).
    """

    __array_ufunc__ = None  # make `array - estimate` call __rsub__

    def __init__(self, mean, se, n):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.se = np.asarray(se, dtype=np.float64)
        self.n = n

    def _exact(self, other):
        if isinstance(other, Estimate) or callable(other):
            raise TypeError("a Monte Carlo estimate combines only with exact values")
        return np.asarray(other, dtype=np.float64)

    def __add__(self, other):
        return Estimate(self.mean + self._exact(other), self.se, self.n)

    __radd__ = __add__

    def __sub__(self, other):
        return Estimate(self.mean - self._exact(other), self.se, self.n)

    def __rsub__(self, other):
        return Estimate(self._exact(other) - self.mean, self.se, self.n)

    def __mul__(self, other):
        c = self._exact(other)
        return Estimate(self.mean * c, self.se * np.abs(c), self.n)

    __rmul__ = __mul__

    def __neg__(self):
        return Estimate(-self.mean, self.se, self.n)

    def __repr__(self):
        return f"Estimate(mean={self.mean}, se={self.se}, n={self.n})"


#: Default number of draws per datum of ``MC_q``.
MC_DRAWS = 4000


def monte_carlo(rule, seed):
    """``MC(f, n=MC_DRAWS)``: the Monte Carlo mean of f(z), z ~ the rule's
    distribution, with its standard error (an ``Estimate`` of shape (n,)).

    Each call draws from a new ``default_rng((seed, 1))``, so a check's value
    does not depend on which checks ran before it.
    """

    def mc(f, n=MC_DRAWS):
        points = rule.draw(np.random.default_rng((seed, 1)), check_draws(n))
        values = _check_values(as_fn(f, "MC")(points), "MC")
        est = mc_mean(values, axis=1)
        return Estimate(est.mean, est.se, est.n)

    return mc


@dataclass
class Instance:
    """One random instance of a setting: the namespace its checks see.

    Attributes
    ----------
    setting : str
        The setting's name (e.g. ``"linear_gaussian"``).
    seed : int
        The seed it was built from (``numpy.random.default_rng(seed)``).
    latent : str
        ``"continuous"``, ``"discrete"`` or ``"none"``.
    names : dict
        Everything a check may name: the datum ``x``, functions of z
        (``log_prior``, ``log_lik``, ``log_joint``, ``log_post``, ``log_q``),
        ``log_px``, operators (``E_q``, ``E_post``, ``integral``, ``MC_q``),
        closed forms and the model's parameters.
    closed : dict
        Closed-form names -> regular expression of the LaTeX that names the
        quantity; a check may use a closed form only in a side of a line
        whose LaTeX matches it.
    """

    setting: str
    seed: int
    latent: str
    names: dict
    closed: dict = field(default_factory=dict)
