"""Two Gaussian mixtures f and g, as the LaTeX evaluator sees them.

The ``mixture_pair`` setting of the LaTeX checker (no check-block setting:
its instances exist only here) is the notation of Hershey & Olsen (2007),
"Approximating the Kullback Leibler divergence between Gaussian mixture
models", used for divergences and bounds between mixtures::

    f(x) = sum_a pi_a f_a(x),     f_a = N(mu_a, Sigma_a)
    g(x) = sum_b omega_b g_b(x),  g_b = N(nu_b, Lambda_b)

``f``, ``g`` and their components ``f_a``, ``g_b`` are densities of the one
variable they are written in (bare in ``D(f \\| g)``, ``\\mathbb{E}_{f_a}``);
``\\pi_a``, ``\\mu_a``, ``\\Sigma_a`` (f's), ``\\omega_b``, ``\\nu_b``,
``\\Lambda_b`` (g's) are their parameters in matrix notation, ``d`` the
dimension; ``\\phi_b`` are variational weights over g's components (positive,
summing to one: a random point of the simplex, so a statement "for any
weights phi" is checked at one per instance). A component index that no sum
binds is free: the line is claimed for every component (every pair).
``D_{\\text{var}}(f \\| g)`` is Hershey and Olsen's variational approximation,
``D_{\\text{varUB}}`` their variational upper bound, ``D_{\\text{lower}}``,
``D_{\\text{upper}}`` the bounds of Durrieu, Thiran and Kelly (2012), each
computed by ``refvi.mixture_kl`` (the library's implementation, against
which the LaTeX formula is checked).

Each instance draws f with three components and g with two in d = 2 (its
own random stream, from the seed), so an index summed over the wrong
mixture, a transposed or inverted covariance or a reversed bound fails.
Integrals over the variable use the trapezoid rule of the other models
(``models._Box``) on a box covering every component.
"""

import numpy as np

from refvi import mixture_kl
from refvi.checker.latex.ir import Unsupported
from refvi.checker.latex.matrix import Eye, Mat
from refvi.models import mixture
from refvi.models.mixture import GaussianMixture

#: The matrix-notation symbols the setting binds; ``f()``, ``g()``: density
#: symbols (``parser``), ``name[]``: a family indexed by a component.
SYMBOLS = ("f()", "g()", "\\pi[]", "\\mu[]", "\\Sigma[]", "\\omega[]", "\\nu[]",
           "\\Lambda[]", "\\phi[]", "d", "I")  # fmt: skip
#: Which mixture's components each family indexes.
FAMILY = {
    **dict.fromkeys(("f", "\\pi", "\\mu", "\\Sigma"), "f"),
    **dict.fromkeys(("g", "\\omega", "\\nu", "\\Lambda", "\\phi"), "g"),
}
_COUNTS = {"f": 3, "g": 2}
_DIM = 2


def _random_chol(rng, d, scale):
    M = np.tril(rng.normal(scale=0.3, size=(d, d)), -1)
    return M + np.diag(scale * np.exp(rng.uniform(-0.3, 0.3, size=d)))


class MixturePairModel:
    """Instance ``seed`` of the ``mixture_pair`` setting (see the module)."""

    discrete = False
    gaussian = False
    pair = True
    mixtures = ("f", "g")

    def __init__(self, seed, label, variant=None):
        from refvi.checker.latex.models import _Box, _stds  # one box rule

        if variant:
            raise Unsupported(
                f"the mixture_pair setting has no variant {dict(variant)}"
            )
        rng = np.random.default_rng([seed, 12])
        self.label, self.variant = label, {}
        self.k = self.d = _DIM
        self.mix = {}
        for name in ("f", "g"):
            K = _COUNTS[name]
            weights = rng.dirichlet(np.full(K, 3.0))
            means = rng.normal(scale=1.2, size=(K, _DIM))
            L = np.stack([_random_chol(rng, _DIM, 0.8) for _ in range(K)])
            self.mix[name] = GaussianMixture(weights, means, L)
        self.phi = rng.dirichlet(np.full(_COUNTS["g"], 2.0))
        means = np.vstack([m.means for m in self.mix.values()])
        stds = np.vstack([_stds(m.L) for m in self.mix.values()])
        self.box = _Box.cover(means, stds)
        self.x = self.box.test_points()  # (m, d): the points of a free variable
        self._points = (self.x[None, None], self.x[:, None, None, :])
        self._rules, self._memo = {}, {}

    # -- densities -------------------------------------------------------------
    def log_mixture(self, symbol, index, points):
        """log f or log g (``index`` None) or of component ``index`` of it,
        at ``points`` (..., d); remembered at the instance's own point arrays
        (the rule nodes, the test points), which every line reuses."""
        key = (symbol, index, id(points))
        hit = self._memo.get(key)
        if hit is not None and hit[0] is points:
            return hit[1]
        value = self._log_mixture(symbol, index, points)
        own = [*self._points, *(r[0] for r in self._rules.values())]
        if any(points is a for a in own):
            self._memo[key] = (points, value)
        return value

    def _log_mixture(self, symbol, index, points):
        from refvi.checker.latex.models import _gauss

        m = self.mix[symbol]
        if index is not None:
            return _gauss(points, m.means[index], m.L[index])
        points = np.asarray(points, dtype=np.float64)
        flat = points.reshape(-1, points.shape[-1])
        return mixture.log_marginal(m, flat).reshape(points.shape[:-1])

    def named_divergence(self, name, a, b):
        """``D_{name}(a \\| b)`` for the mixtures ``a``, ``b`` ('f', 'g') by
        ``refvi.mixture_kl``."""
        p, q = self.mix[a], self.mix[b]
        if name == "var":
            return mixture_kl.kl_variational(p, q)
        if name == "varUB":
            return mixture_kl.kl_variational_upper_bound(p, q)
        bounds = mixture_kl.kl_bounds(p, q)
        return bounds.lower if name == "lower" else bounds.upper

    # -- matrix notation --------------------------------------------------------
    def matrix_symbol(self, name):
        if name == "d":
            return float(self.d)
        if name == "I":
            return Eye(np.ones((1, 1, 1, 1, 1)))
        raise Unsupported(f"{name}: no such matrix in the mixture_pair setting")

    def component_count(self, family):
        """How many components the family ``family`` indexes."""
        if family not in FAMILY:
            raise Unsupported(f"{family}: no family of components here")
        return _COUNTS[FAMILY[family]]

    def component_symbol(self, name, j):
        """Component j of ``name``: a weight (a number) or a mean (a column)
        or covariance of f's or g's component j; phi_j, the variational
        weights."""
        if name not in FAMILY:
            raise Unsupported(f"{name}_j: no such family in the mixture_pair setting")
        if name == "\\phi":
            return float(self.phi[j])
        m = self.mix[FAMILY[name]]
        if name in ("\\pi", "\\omega"):
            return float(m.weights[j])
        if name in ("\\mu", "\\nu"):
            return Mat.of(m.means[j])
        L = m.L[j]
        return Mat.of(L @ L.T)

    # -- quadrature --------------------------------------------------------------
    def z_rule(self, level):
        if ("z", level) not in self._rules:
            nodes, logw = self.box.rule(level)
            self._rules["z", level] = (nodes[None, None], logw[None, None])
        return self._rules["z", level]

    def x_rule(self, level):
        if ("x", level) not in self._rules:
            nodes, logw = self.box.rule(level)
            self._rules["x", level] = (nodes[None, :, None, :], logw[None, :, None])
        return self._rules["x", level]

    def z_points(self):
        return self._points[0]

    def x_data(self):
        return self._points[1]
