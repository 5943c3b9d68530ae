"""Model instances as the LaTeX evaluator sees them: densities of (x, z).

The instances are those of ``refvi.checker.settings`` (the derivation
checker's settings). At the data every density is the instance's own
function (``log_prior``, ``log_lik``, ``log_joint``, ``log_post``, ``log_q``,
``log_px``); the evaluator also needs densities at other x (integrals over x,
expectations under p_data), which are computed from the instance's
parameters by the model modules (``refvi.models``).

An aggregated-posterior section needs an encoder q(z|x) defined at every x
and a data distribution p_data(x): the derivation checker's ``aggregated``
setting (linear-Gaussian) has both (:class:`AggregatedModel`); for its
non-Gaussian counterpart ``aggregated_mixture_prior`` the :class:`Aggregate`
layer adds them on top of a ``mixture_prior`` instance, with the aggregated
posterior q(z) = int q(z|x) p_data(x) dx in closed form.

Variants (``data='model'``: p_data is the model marginal; ``q='exact'``: q(z|x)
is the exact posterior) express a section's assumptions.

Integrals over a continuous variable use the trapezoid rule on a box
covering every density of the instance (8 standard deviations past the
outermost component), with step h = sigma_min / 4: for integrands analytic
in a strip the error decays like exp(-2 pi^2 w^2 / h^2) with w the strip's
half-width (about sigma for a Gaussian, less for the log of a mixture);
level 1 uses h = sigma_min / 2.5 and the difference is the error estimate.
When that estimate is too large for the judge to decide, the line is
evaluated again at levels 2 and 3 (h = sigma_min / 8 and sigma_min / 5).
"""

import copy
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import logsumexp

from refvi.checker.latex.categorical_model import SYMBOLS as CATEGORICAL_SYMBOLS
from refvi.checker.latex.categorical_model import CategoricalModel
from refvi.checker.latex.data_statistics import DATA_STATISTICS, data_statistic
from refvi.checker.latex.em_models import EM_SETTINGS, EMStepModel
from refvi.checker.latex.ir import Unsupported
from refvi.checker.latex.matrix import Eye, Mat
from refvi.checker.latex.mixture_pair import SYMBOLS as MIXTURE_PAIR_SYMBOLS
from refvi.checker.latex.mixture_pair import MixturePairModel
from refvi.gaussian import _log_prob_chol, _log_prob_whitened
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lg_em
from refvi.models import mixture
from refvi.models import mixture_prior as mp
from refvi.models.linear_gaussian import LinearGaussian
from refvi.models.mixture_prior import MixturePrior

#: How far theta^old lies from theta along theta's direction (a unit vector);
#: below 1, so psi stays positive (psi's direction is psi times a unit share).
OLD_STEP = 0.6
_STEPS = (4.0, 2.5, 8.0, 5.0)  # sigma_min / h at levels 0, 1 and refined 2, 3
_HALF_WIDTH = 8.0


def _gauss(Y, M, L):
    """log N(Y | M, L L^T), broadcasting the leading axes of Y and M.

    A diagonal ``L`` whitens by division (no triangular solve over the many
    quadrature points); both routes end in ``refvi.gaussian``'s kernel.
    """
    diff = np.asarray(Y, dtype=np.float64) - M
    shape = diff.shape[:-1]
    flat = diff.reshape(-1, diff.shape[-1])
    diag = np.diag(L)
    if np.array_equal(L, np.diag(diag)):
        logdet = 2.0 * np.sum(np.log(diag))
        return _log_prob_whitened(flat / diag, logdet).reshape(shape)
    return _log_prob_chol(flat, np.zeros(diff.shape[-1]), L).reshape(shape)


def _flat(fn, Y):
    """Apply ``fn`` (rows (m, k) -> (m,)) to points Y (..., k)."""
    Y = np.asarray(Y, dtype=np.float64)
    return fn(Y.reshape(-1, Y.shape[-1])).reshape(Y.shape[:-1])


def _box_rule(lo, hi, h):
    """Trapezoid nodes (M, dim) and log-weights (M,) on the box [lo, hi]."""
    axes = [np.arange(a, b + h, h) for a, b in zip(lo, hi, strict=True)]
    grids = np.meshgrid(*axes, indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=1)
    return nodes, np.full(nodes.shape[0], len(lo) * np.log(h))


@dataclass
class _Box:
    lo: np.ndarray
    hi: np.ndarray
    sigma_min: float

    @classmethod
    def cover(cls, means, stds):
        """The box covering N(means_i, diag(stds_i^2)) for every row i."""
        means, stds = np.atleast_2d(means), np.atleast_2d(stds)
        return cls(
            np.min(means - _HALF_WIDTH * stds, axis=0),
            np.max(means + _HALF_WIDTH * stds, axis=0),
            float(np.min(stds)),
        )

    def rule(self, level):
        return _box_rule(self.lo, self.hi, self.sigma_min / _STEPS[level])

    def test_points(self, m=7):
        c = 0.5 * (self.lo + self.hi)
        half = 0.5 * (self.hi - self.lo) / _HALF_WIDTH  # about sigma_max
        t = np.linspace(-1.5, 1.5, m)
        return c + t[:, None] * half


def _stds(L):
    """Per-coordinate standard deviations of covariances L L^T, (..., k)."""
    return np.sqrt(np.einsum("...ij,...ij->...i", L, L))


def _cached_z_rule(model, level):
    """The rule of ``model.z_box`` at ``level``, broadcast over the model's n
    data as (nodes (n, 1, m, k), log-weights (n, 1, m)); cached in
    ``model._rules``."""
    if ("z", level) not in model._rules:
        nodes, logw = model.z_box.rule(level)
        n = model.x.shape[0]
        model._rules["z", level] = (
            np.broadcast_to(nodes, (n, 1) + nodes.shape),
            np.broadcast_to(logw, (n, 1, logw.shape[0])),
        )
    return model._rules["z", level]


def _cached_x_rule(model, box, level):
    """The rule of ``box`` at ``level`` for a bound x, as (nodes (1, M, 1, d),
    log-weights (1, M, 1)); cached in ``model._rules`` (the same arrays each
    time, which the density memo relies on)."""
    if ("x", level) not in model._rules:
        nodes, logw = box.rule(level)
        model._rules["x", level] = (nodes[None, :, None, :], logw[None, :, None])
    return model._rules["x", level]


class ContinuousModel:
    """An issue-5 ``Instance`` with continuous z, seen by the evaluator.

    At the data (the free x of a line) every density is the instance's own
    function (``log_prior``, ``log_lik``, ``log_joint``, ``log_post``,
    ``log_q``, ``log_px``). At other x (a bound x) the densities are computed
    from the instance's parameters by the model modules; ``q(z|x)`` there, the
    aggregated posterior and p_data(x) exist only with an :class:`Aggregate`
    layer, whose encoder then is q(z|x) everywhere.

    Parameters
    ----------
    instance : refvi.checker.namespace.Instance
    variant : dict
        ``{'q': 'exact'}``: q(z|x) is the exact posterior; ``{'data':
        'model'}``: p_data(x) is the model marginal p_theta(x).
    layer : Aggregate or None
    """

    discrete = False

    def __init__(self, instance, label, variant=None, layer=None):
        names = instance.names
        self.names, self.variant, self.layer = names, dict(variant or {}), layer
        self.data_distribution = layer is not None  # p_data(x) of the layer
        self.label = label
        self.x = names["x"]
        self.gaussian = instance.setting in ("linear_gaussian", "amortized")
        # the amortized setting's layer is its own encoder: q(z|x_i) = q_i
        self.amortized = instance.setting == "amortized"
        if self.gaussian:
            self.model = LinearGaussian(names["W"], names["mu"], names["psi"])
            self.lik = self.model
        else:
            L_B = np.linalg.cholesky(names["B"])
            self.model = MixturePrior(
                names["weights"], names["a"], L_B, names["W"], names["mu"], names["psi"]
            )
            self.lik = self.model.likelihood
        self.k, self.d = self.model.k, self.model.d
        if (
            self.variant.get("q", "exact") != "exact"
            or self.variant.get("data", "model") != "model"
        ):
            raise Unsupported(
                f"variant {self.variant} exists only in the aggregated setting"
            )
        self._memo, self._rules = {}, {}
        self._x_data = self.x[:, None, None, :]
        self.seed = instance.seed
        self._directions = None
        self._boxes()

    def q_draws(self, count):
        """``count`` draws of q(z|x_i) per datum, (n, 1, count, k), from the
        instance's own stream ``[seed, 7]`` (the same draws on every call)."""
        if self.layer is not None or self.variant:
            raise Unsupported("Monte Carlo draws exist only of the instance's q")
        if ("draws", count) not in self._rules:
            rng = np.random.default_rng([self.seed, 7])
            eps = rng.standard_normal((self.x.shape[0], count, self.k))
            m, L = self.names["m_q"], self.names["L_q"]
            Z = m[:, None, :] + np.einsum("nkl,nml->nmk", L, eps)
            self._rules["draws", count] = (Z[:, None],)
        return self._rules["draws", count][0]

    def perturbed(self, group, t):
        """This instance with theta = (W, mu, psi) (``group`` 'theta') or
        phi = (m_q, L_q) ('phi') moved by ``t`` along a fixed random unit
        direction (:class:`PerturbedModel`); linear-Gaussian only."""
        if not self.gaussian or (self.layer is not None and not self.amortized):
            raise Unsupported(
                f"\\nabla_\\{group}: parameters are moved in the linear_gaussian "
                "and amortized settings only"
            )
        return PerturbedModel(self, group, t)

    def parameter(self, name):
        """(array, free entries, per datum) of the model's W, \\mu, \\psi or
        q's m_q, L_q (lower triangular) in matrix notation (``derivatives``);
        linear-Gaussian only."""
        if not self.gaussian or self.layer is not None or name not in _MOVABLE:
            raise Unsupported(
                f"a derivative in {name}: parameters are moved one by one in the "
                f"linear_gaussian setting ({', '.join(_MOVABLE)})"
            )
        if name in ("m_q", "L_q"):
            value = np.array(self.names[name], dtype=np.float64)
            k = value.shape[-1]
            free = np.ones(k, bool) if name == "m_q" else np.tri(k) > 0
            return value, free, True
        value = {"W": self.model.W, "\\mu": self.model.mu, "\\psi": self.model.psi}[
            name
        ]
        value = np.array(value, dtype=np.float64)
        return value, np.ones(value.shape, bool), False

    def moved(self, name, value):
        """This instance with ``name`` set to ``value`` (:class:`PerturbedModel`)."""
        if name == "m_q":
            return PerturbedModel(self, "fixed", 0.0, q=(value, self.names["L_q"]))
        if name == "L_q":
            return PerturbedModel(self, "fixed", 0.0, q=(self.names["m_q"], value))
        W, mu, psi = self.model.W, self.model.mu, self.model.psi
        W, mu, psi = {"W": (value, mu, psi), "\\mu": (W, value, psi),
                      "\\psi": (W, mu, value)}[name]  # fmt: skip
        return PerturbedModel(self, "fixed", 0.0, LinearGaussian(W, mu, psi))

    def exact_q(self):
        """This instance with q(z|x_i) the exact posterior N(m_i, S), as a
        Gaussian q (its mean and Cholesky factor) that ``perturbed`` moves."""
        if not self.gaussian or (self.layer is not None and not self.amortized):
            raise Unsupported("q = p(z|x) as a Gaussian q: linear_gaussian, amortized")
        post = lg.posterior(self.model, self.x)
        L = np.broadcast_to(
            np.linalg.cholesky(post.S), (self.x.shape[0], self.k, self.k)
        )
        return PerturbedModel(self, "fixed", 0.0, q=(post.m, np.array(L)))

    def version(self, at):
        """This instance at the parameters ``at`` of an EM step: 'old' is theta
        moved by OLD_STEP along its direction (the parameters the step starts
        from), 'new' the exact M-step from there on the instance's data,
        argmax_theta sum_i E_{p(z|x_i, theta^old)}[log p(x_i, z | theta)]
        (``linear_gaussian_em.m_step``); linear-Gaussian only."""
        if not self.gaussian or self.layer is not None:
            raise Unsupported(
                f"\\theta^{{{at}}}: parameters at another value exist in the "
                "linear_gaussian and mixture settings only"
            )
        if ("version", at) not in self._rules:
            old = PerturbedModel(self, "theta", OLD_STEP)
            if at == "new":
                post = lg_em.posterior(old.model, self.x)
                old = PerturbedModel(self, "theta", 0.0, lg_em.m_step(self.x, post))
            self._rules["version", at] = (old,)
        return self._rules["version", at][0]

    def directions(self):
        """The fixed random unit direction of theta and of phi (stream
        [seed, 8]); L_q's is lower triangular, psi's keeps psi positive."""
        if self._directions is None:
            rng = np.random.default_rng([self.seed, 8])
            W, mu, psi = self.model.W, self.model.mu, self.model.psi
            m_q, L_q = self.names["m_q"], self.names["L_q"]
            theta = [rng.normal(size=W.shape), rng.normal(size=mu.shape),
                     rng.normal(size=psi.shape) * psi]  # fmt: skip
            phi = [rng.normal(size=m_q.shape), np.tril(rng.normal(size=L_q.shape))]
            if self.amortized:  # its q is diagonal: move log sigma, not L
                phi[1] = phi[1] * np.eye(self.k) * np.abs(L_q)
            unit = [
                [d / np.sqrt(sum(np.sum(e**2) for e in group)) for d in group]
                for group in (theta, phi)
            ]
            self._directions = {"theta": unit[0], "phi": unit[1]}
        return self._directions

    def q_scale(self):
        """(m, L) of the Gaussian q(z|x_i) = N(m_i, L_i L_i^T): (n, k), (n, k, k)."""
        if (self.layer is not None and not self.amortized) or self.variant:
            raise Unsupported("the reparameterization exists only of the instance's q")
        return self.names["m_q"], self.names["L_q"]

    def gaussian_q(self):
        """(mu, sigma) of the diagonal Gaussian q(z|x_i), each (n, k): what the
        names ``\\mu_j``, ``\\sigma_j`` bind to (a full covariance has no
        sigma_j: declare ``q=diag``)."""
        if self.layer is not None or self.variant:
            raise Unsupported("\\mu, \\sigma of q exist only for the instance's q")
        L = self.names["L_q"]
        diag = np.einsum("...jj->...j", L)
        if not np.array_equal(L, diag[..., None] * np.eye(L.shape[-1])):
            raise Unsupported(
                "\\sigma_j of a full-covariance q: declare a diagonal q, "
                "e.g. settings: linear_gaussian(q=diag)"
            )
        return self.names["m_q"], np.abs(diag)

    def matrix_symbol(self, name):
        """The array (a ``matrix.Mat``) or dimension that the symbol ``name``
        of matrix notation denotes in this instance (``MATRIX_SYMBOLS``)."""
        setting = self.label.split("/")[0].split("(")[0]
        setting = LAYERED.get(setting, (setting,))[0]
        if name not in MATRIX_SYMBOLS.get(setting, ()):
            raise Unsupported(f"{name}: no such matrix in the {setting} setting")
        if ("sym", name) not in self._rules:
            self._rules["sym", name] = (self._symbol(name),)
        return self._rules["sym", name][0]

    def _symbol(self, name):
        names, lik, k, d = self.names, self.lik, self.k, self.d
        common = {"W": lik.W, "\\mu": lik.mu, "\\psi": lik.psi,
                  "\\Psi": np.diag(lik.psi), "I_k": np.eye(k),
                  "I_d": np.eye(d)}  # fmt: skip
        if name in common:
            return Mat.of(common[name])
        if name == "I":
            return Eye(np.ones((1, 1, 1, 1, 1)))
        if name in ("d", "k"):
            return float(d if name == "d" else k)
        if name == "J":
            return float(self.n_components())
        if name in ("m_q", "L_q", "\\Sigma_q"):
            L_q = names["L_q"]
            value = {"m_q": names["m_q"], "L_q": L_q,
                     "\\Sigma_q": L_q @ np.swapaxes(L_q, -1, -2)}[name]  # fmt: skip
            return Mat.per_datum(value)
        post = lg.posterior(self.model, self.x)
        if name in ("m", "S", "C"):
            return {"m": Mat.per_datum(post.m), "S": Mat.of(post.S),
                    "C": Mat.of(self.model.cov)}[name]  # fmt: skip
        if name == "r":  # the residual r = x - mu (derivations/linear_gaussian.md)
            return Mat.per_datum(self.x - lik.mu)
        if name in DATA_STATISTICS:
            return data_statistic(name, self.x)
        if name == "L_M":
            return Mat.of(np.linalg.cholesky(names["M"]))
        if name == "A":
            return Mat.of(names["A_post"])
        if name == "b":
            return Mat.per_datum(names["b"])
        return Mat.of(names[name])  # P, M: the setting's own

    def n_components(self):
        """J, the number of the mixture prior's components."""
        if self.gaussian:
            raise Unsupported("the linear_gaussian prior has no components")
        return self.model.J

    def component_symbol(self, name, j):
        """Component j of the family ``name`` (``MATRIX_SYMBOLS['mixture_prior']``):
        the prior's pi_j, a_j, B_j, L_{B_j}; the marginal's C_j
        (``mixture_prior.marginal``); the posterior's P(j | x) and m_j (per
        datum) and S_j (``mixture_prior.posterior``)."""
        if self.gaussian or f"{name}[]" not in MATRIX_SYMBOLS["mixture_prior"]:
            raise Unsupported(f"{name}_j: no such family here")
        m = self.model
        if name in ("\\pi", "a", "B", "L_B"):
            L_B = m.L_B[j]
            value = {"\\pi": m.weights[j], "a": m.a[j],
                     "B": L_B @ L_B.T, "L_B": L_B}[name]  # fmt: skip
            return float(value) if name == "\\pi" else Mat.of(value)
        if name == "C":
            L = mp.marginal(m).L[j]
            return Mat.of(L @ L.T)
        post = mp.posterior(m, self.x)
        if name == "P":  # P(j | x), per datum
            return np.exp(post.log_weights[:, j])[:, None, None]
        if name == "m":
            return Mat.per_datum(post.m[:, j])
        L_S = post.L_S[j]
        return Mat.of(L_S @ L_S.T)

    # -- densities -------------------------------------------------------------
    def _memo_call(self, name, fn, *arrays):
        """``fn(*arrays)``, remembered when every array is one of the
        instance's own point arrays (the data, the rule nodes, the test
        points): every line reuses them, and the identity check makes a stale
        hit impossible."""
        key = (name,) + tuple(id(a) for a in arrays)
        hit = self._memo.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], arrays, strict=True)):
            return hit[1]
        value = fn(*arrays)
        own = [self._x_data, *(r[0] for r in self._rules.values())]
        if all(any(a is o for o in own) for a in arrays):
            self._memo[key] = (arrays, value)
        return value

    def _at_data(self, name, Z):
        """The instance's function ``name`` at z points Z (n, a, M, k)."""
        n, a, m, k = Z.shape
        values = self.names[name](np.reshape(Z, (n, a * m, k)))
        return values.reshape(n, a, m)

    def _log_prior(self, Z):
        return self._memo_call("prior", lambda z: self._at_data("log_prior", z), Z)

    def _log_lik(self, X, Z):
        mean = np.einsum("dk,...k->...d", self.lik.W, Z) + self.lik.mu
        return _gauss(X, mean, np.diag(np.sqrt(self.lik.psi)))

    def _log_marginal(self, X):
        if X is self._x_data:
            return self.names["log_px"][:, None, None]
        return self._memo_call("marginal", self._log_marginal_uncached, X)

    def _log_marginal_uncached(self, X):
        if self.gaussian:
            return _flat(lambda x: lg.log_marginal(self.model, x), X)
        return _flat(lambda x: mp.log_marginal(self.model, x), X)

    def _log_data(self, X):
        if self.variant.get("data") == "model":
            return self._log_marginal(X)
        return self._memo_call("data", lambda x: _gauss(x, *self._need_layer().data), X)

    def _need_layer(self):
        if self.layer is None:
            raise Unsupported(
                f"setting {self.label.split('/')[0]} has no encoder q(z|x) at other x, "
                "no p_data(x) and no aggregated posterior: declare the setting "
                "aggregated or aggregated_mixture_prior"
            )
        return self.layer

    def _log_q(self, X, Z):
        if self.variant.get("q") == "exact":
            return self.log_density("post", X, Z)
        if self.layer is not None:
            A, b, L_s = self.layer.encoder
            return _gauss(Z, np.einsum("kd,...d->...k", A, X) + b, L_s)
        if X is not self._x_data:
            self._need_layer()
        return self._memo_call("q", lambda z: self._at_data("log_q", z), Z)

    def _log_agg(self, Z):
        return self._memo_call("agg", self._log_agg_uncached, Z)

    def _log_agg_uncached(self, Z):
        layer = self._need_layer()
        if self.variant:
            # q(z) = int q(z|x) p_data(x) dx without a closed form: quadrature
            X, logw = self.x_rule(0)
            vals = self.log_density("q", X, Z) + self._log_data(X)
            return logsumexp(vals + logw, axis=1, keepdims=True)
        A, b, L_s = layer.encoder
        m_x, L_x = layer.data
        AL = A @ L_x
        cov = AL @ AL.T + L_s @ L_s.T
        return _gauss(Z, A @ m_x + b, np.linalg.cholesky(cov))

    def log_density(self, kind, X, Z):
        at_data = X is self._x_data
        if kind == "prior":
            return self._log_prior(Z)
        if kind in ("lik", "joint", "post"):
            if at_data:
                name = "log_" + kind
                return self._memo_call(kind, lambda z: self._at_data(name, z), Z)
            if kind == "lik":
                return self._log_lik(X, Z)
            log_joint = self._log_prior(Z) + self._log_lik(X, Z)
            if kind == "joint":
                return log_joint
            return log_joint - self._log_marginal(X)
        if kind == "marginal":
            return self._log_marginal(X)
        if kind == "q":
            return self._log_q(X, Z)
        if kind == "agg":
            return self._log_agg(Z)
        if kind == "data":
            return self._log_data(X)
        if kind == "data2":
            raise Unsupported("p_data2(x) exists only in the aggregated setting")
        raise ValueError(f"unknown density kind {kind!r}")

    # -- quadrature --------------------------------------------------------------
    def _boxes(self):
        """Boxes covering every density in z (all data) and in x."""
        n, k = self.x.shape[0], self.k
        if self.gaussian:
            post = lg.posterior(self.model, self.x)
            means = [np.zeros((1, k)), post.m]
            stds = [np.ones((1, k)), np.broadcast_to(_stds(post.L_S), post.m.shape)]
        else:
            post = mp.posterior(self.model, self.x)
            means = [self.model.a, post.m.reshape(-1, k)]
            stds = [_stds(self.model.L_B), np.tile(_stds(post.L_S), (n, 1))]
        means.append(self.names["m_q"])
        stds.append(_stds(self.names["L_q"]))
        noise = np.broadcast_to(np.sqrt(self.lik.psi), self.x.shape)
        x_means, x_stds = [self.x], [noise]
        if self.layer is not None:
            A, b, L_s = self.layer.encoder
            m_x, L_x = self.layer.data
            means.append(self.x @ A.T + b)
            stds.append(np.broadcast_to(np.diag(L_s), (n, k)))
            AL = A @ L_x
            means.append((A @ m_x + b)[None])
            stds.append(np.sqrt(np.diag(AL @ AL.T + L_s @ L_s.T))[None])
            x_means.append(m_x[None])
            x_stds.append(_stds(L_x)[None])
        cm, cs = self._marginal_components()  # p_theta(x), whatever p_data is
        x_means.append(cm)
        x_stds.append(cs)
        x_box = _Box.cover(np.vstack(x_means), np.vstack(x_stds))
        if self.layer is not None:  # q(z|x) as a function of x: width s / |A|
            A, _, L_s = self.layer.encoder
            ridge = np.min(np.diag(L_s)) / max(np.max(np.abs(A)), 1e-12)
            x_box.sigma_min = min(x_box.sigma_min, ridge)
        self.x_box = x_box
        self.z_box = _Box.cover(np.vstack(means), np.vstack(stds))

    def _marginal_components(self):
        lik = self.lik
        if self.gaussian:
            cov = lik.W @ lik.W.T + np.diag(lik.psi)
            return lik.mu[None], np.sqrt(np.diag(cov))[None]
        WL = np.einsum("dk,jkl->jdl", lik.W, self.model.L_B)
        cov = np.einsum("jdl,jel->jde", WL, WL) + np.diag(lik.psi)
        means = self.model.a @ lik.W.T + lik.mu
        return means, np.sqrt(np.einsum("jdd->jd", cov))

    def z_rule(self, level):
        return _cached_z_rule(self, level)

    def x_rule(self, level):
        if self.d > 2:
            raise Unsupported(
                f"an integral over x in d = {self.d} dimensions (at most 2 here)"
            )
        return _cached_x_rule(self, self.x_box, level)

    def z_points(self):
        if "points" not in self._rules:
            pts = self.z_box.test_points()
            shape = (self.x.shape[0], 1) + pts.shape
            self._rules["points"] = (np.broadcast_to(pts, shape),)
        return self._rules["points"][0]

    def x_data(self):
        return self._x_data


class _OnBase:
    """The points and rules of the instance ``base`` a variant is built on."""

    def z_rule(self, level):
        return self.base.z_rule(level)

    def x_rule(self, level):
        return self.base.x_rule(level)

    def z_points(self):
        return self.base.z_points()

    def x_data(self):
        return self.base.x_data()


class PerturbedModel(_OnBase):
    """A linear-Gaussian :class:`ContinuousModel` with theta or phi moved by
    ``t`` along its direction (``ContinuousModel.directions``): every density
    computed from the moved parameters (``refvi.models.linear_gaussian``) at
    the base model's points, on the base model's rules."""

    discrete = False
    gaussian = True

    def __init__(self, base, group, t, model=None, q=None):
        self.base, self.label, self.variant = base, base.label, base.variant
        self.k, self.d, self.x = base.k, base.d, base.x
        self.m_q, self.L_q = q if q is not None else (base.names["m_q"],
                                                      base.names["L_q"])  # fmt: skip
        if model is not None or q is not None:  # the parameters given
            self.model = model if model is not None else base.model
            return
        if group in ("mu", "sigma"):  # q's mean or standard deviation, k = 1
            if self.k != 1:
                raise Unsupported(
                    f"\\partial / \\partial \\{group} of a {self.k}-dimensional q"
                )
            self.model = base.model
            if group == "mu":
                self.m_q = self.m_q + t
            else:
                self.L_q = self.L_q + t * np.sign(self.L_q)
            return
        d = base.directions()
        W, mu, psi = base.model.W, base.model.mu, base.model.psi
        if group in ("theta", "all"):  # all: theta and phi at once (\nabla)
            th = d["theta"]
            W, mu, psi = W + t * th[0], mu + t * th[1], psi + t * th[2]
        if group in ("phi", "all"):
            self.m_q, self.L_q = self.m_q + t * d["phi"][0], self.L_q + t * d["phi"][1]
        self.model = LinearGaussian(W, mu, psi)

    def q_scale(self):
        return self.m_q, self.L_q

    def perturbed(self, group, t):
        """This model moved by ``t`` along the base's direction of ``group``
        ('theta', 'phi' or 'all'), from its own parameters (``exact_q``)."""
        if group not in ("theta", "phi", "all"):
            raise Unsupported(f"\\nabla_\\{group} of a moved model")
        d = self.base.directions()
        model, m_q, L_q = self.model, self.m_q, self.L_q
        if group in ("theta", "all"):
            th = d["theta"]
            model = LinearGaussian(model.W + t * th[0], model.mu + t * th[1],
                                   model.psi + t * th[2])  # fmt: skip
        if group in ("phi", "all"):
            m_q, L_q = m_q + t * d["phi"][0], L_q + t * d["phi"][1]
        return PerturbedModel(self.base, "fixed", 0.0, model, (m_q, L_q))

    def matrix_symbol(self, name):
        """The symbols of ``MATRIX_SYMBOLS['linear_gaussian']`` at the moved
        parameters, computed from them (``linear_gaussian.posterior``)."""
        if name not in MATRIX_SYMBOLS["linear_gaussian"]:
            raise Unsupported(f"{name}: no such matrix in the linear_gaussian setting")
        m, x = self.model, self.x
        if name in ("d", "k"):
            return float(self.d if name == "d" else self.k)
        if name == "I":
            return Eye(np.ones((1, 1, 1, 1, 1)))
        if name in DATA_STATISTICS:  # of the data, which do not move
            return data_statistic(name, x)
        if name in ("m_q", "L_q", "\\Sigma_q"):
            Sigma_q = self.L_q @ np.swapaxes(self.L_q, -1, -2)
            value = {"m_q": self.m_q, "L_q": self.L_q, "\\Sigma_q": Sigma_q}[name]
            return Mat.per_datum(value)
        P = np.diag(1.0 / m.psi)
        M = np.eye(self.k) + m.W.T @ P @ m.W
        if "_post" not in self.__dict__:  # once per moved instance
            self._post = lg.posterior(m, x)
        post = self._post
        fixed = {"W": m.W, "\\mu": m.mu, "\\psi": m.psi, "\\Psi": np.diag(m.psi),
                 "I_k": np.eye(self.k), "I_d": np.eye(self.d), "C": m.cov,
                 "S": post.S, "P": P, "M": M, "L_M": np.linalg.cholesky(M),
                 "A": post.S @ m.W.T @ P}  # fmt: skip
        if name in fixed:
            return Mat.of(fixed[name])
        per = {"m": post.m, "r": x - m.mu,
               "b": np.linalg.solve(m.cov, (x - m.mu).T).T}  # fmt: skip
        return Mat.per_datum(per[name])

    def gaussian_q(self):
        """(mu, sigma) of a one-dimensional q(z|x_i) at the moved parameters."""
        if self.k != 1:
            raise Unsupported("\\mu, \\sigma of a moved q in one dimension only")
        return self.m_q, np.abs(self.L_q[:, :, 0])

    def log_density(self, kind, X, Z):
        m = self.model
        if kind == "q" and self.variant.get("q") == "exact":
            kind = "post"
        if m is self.base.model and kind != "q":  # only q moved: the base's
            return self.base.log_density(kind, X, Z)
        if kind == "prior":
            return _gauss(Z, np.zeros(self.k), np.eye(self.k))
        if kind == "lik":
            mean = np.einsum("dk,...k->...d", m.W, Z) + m.mu
            return _gauss(X, mean, np.diag(np.sqrt(m.psi)))
        if kind == "marginal":
            return _flat(lambda x: lg.log_marginal(m, x), X)
        if kind in ("joint", "post"):
            joint = self.log_density("prior", X, Z) + self.log_density("lik", X, Z)
            return (
                joint if kind == "joint" else joint - self.log_density("marginal", X, Z)
            )
        if kind == "q" and X is self.base.x_data():
            Z = np.broadcast_to(Z, (self.x.shape[0],) + Z.shape[1:])
            return np.stack([_gauss(Z[i], self.m_q[i], self.L_q[i])
                             for i in range(Z.shape[0])])  # fmt: skip
        raise Unsupported(f"\\nabla of the density '{kind}' here")


#: The parameters of the linear_gaussian setting a derivative moves.
_MOVABLE = ("W", "\\mu", "\\psi", "m_q", "L_q")


class Instantiated:
    """An instance with the symbols a line leaves open fixed: ``choice`` of
    the functions standing for an abstract f, g, h (``evaluate.FUNCTIONS``),
    ``count`` the number K of importance samples. Each is one more instance
    to check on."""

    def __init__(self, base, **fixed):
        self.base = base
        self.__dict__.update(fixed)
        shown = {"choice": lambda v: f"f{v + 1}", "count": lambda v: f"K={v}"}
        self.label = base.label + "".join(f",{shown[k](v)}" for k, v in fixed.items())

    def __getattr__(self, name):
        return getattr(self.base, name)


@dataclass(frozen=True)
class Aggregate:
    """The layer an aggregated-posterior section needs on top of an instance:
    an encoder q(z|x) = N(A x + b, L_s L_s^T) and p_data(x) = N(m_x, L_x L_x^T).
    The aggregated posterior int q(z|x) p_data(x) dx is then
    N(A m_x + b, A L_x L_x^T A^T + L_s L_s^T) (derivations/README.md)."""

    encoder: tuple  # (A (k, d), b (k,), L_s (k, k))
    data: tuple  # (m_x (d,), L_x (d, d))

    @classmethod
    def draw(cls, instance):
        """A random layer for ``instance`` (its own stream: [seed, 6])."""
        rng = np.random.default_rng([instance.seed, 6])
        names = instance.names
        k, d = names["W"].shape[1], names["W"].shape[0]
        A = rng.normal(scale=0.4, size=(k, d))
        b = rng.normal(scale=0.3, size=k)
        L_s = np.diag(np.exp(rng.uniform(-0.8, -0.2, size=k)))
        m_x = names["mu"] + rng.normal(scale=0.5, size=d)
        return cls((A, b, L_s), (m_x, _random_chol(rng, d, 1.2)))

    @classmethod
    def of_amortized(cls, instance):
        """The ``amortized`` setting's own layer: its encoder
        N(A x + c, diag(exp(2 log_std))) and its Gaussian data N(m_data, C_data)."""
        names = instance.names
        L_s = np.diag(np.exp(names["log_std"]))
        L_x = np.linalg.cholesky(names["C_data"])
        return cls((names["A"], names["c"], L_s), (names["m_data"], L_x))


class DiscreteModel:
    """An issue-5 ``Instance`` with z in {0, ..., K-1}: every density is the
    instance's table at the data; there is no density of a bound x."""

    discrete = True
    gaussian = False

    def __init__(self, instance, label, variant=None):
        self.names, self.variant = instance.names, dict(variant or {})
        self.label = label
        self.x = self.names["x"]
        self.K = int(self.names["K"])
        self._x_data = self.x[:, None, None, :]
        self.seed, self._versions = instance.seed, {}

    def log_density(self, kind, X, Z):
        if X is not self._x_data:
            raise Unsupported("the mixture setting has no density at other x")
        if kind == "marginal":
            return self.names["log_px"][:, None, None]
        if kind == "q" and self.variant.get("q") == "exact":
            kind = "post"
        fn = {"prior": "log_prior", "lik": "log_lik", "joint": "log_joint",
              "post": "log_post", "q": "log_q"}.get(kind)  # fmt: skip
        if fn is None:
            raise Unsupported(f"the mixture setting has no density '{kind}'")
        n, a, m = Z.shape
        return self.names[fn](np.reshape(Z, (n, a * m))).reshape(n, a, m)

    def version(self, at):
        """This instance at the parameters ``at`` of an EM step
        (:class:`MixtureAt`): 'old' moves the log-weights, means and
        covariance factors by a fixed random amount (stream [seed, 9]); 'new'
        is the M-step of the weights and means from there with the
        covariances held (ECM's conditional M-step: two data points make a
        full-covariance M-step singular), which raises Q(theta, theta^old)
        and so log p(X|theta)."""
        if at not in self._versions:
            nm = self.names
            rng = np.random.default_rng([self.seed, 9])
            K, d = nm["means"].shape
            eta = np.log(nm["weights"]) + 0.5 * rng.normal(size=K)
            means = nm["means"] + 0.5 * rng.normal(size=(K, d))
            L = np.linalg.cholesky(nm["covariances"])
            L = L * np.exp(0.2 * rng.normal(size=(K, 1, d)))
            weights = np.exp(eta - logsumexp(eta))
            old = MixtureAt(self, mixture.GaussianMixture(weights, means, L))
            if at == "new":
                r = np.exp(old.tables["post"])  # (n, K)
                N_k = np.sum(r, axis=0)
                new = mixture.GaussianMixture(
                    N_k / self.x.shape[0], (r.T @ self.x) / N_k[:, None], L
                )
                old = MixtureAt(self, new)
            self._versions[at] = old
        return self._versions[at]

    def perturbed(self, group, t):
        """This instance with theta = (eta, mu, L) moved by ``t`` along a
        fixed random unit direction (stream [seed, 10]; L's is lower
        triangular): ``MixtureAt`` the moved mixture. q is not moved."""
        if group != "theta":
            raise Unsupported(f"\\nabla_\\{group}: the mixture's q is not moved")
        nm = self.names
        K, d = nm["means"].shape
        rng = np.random.default_rng([self.seed, 10])
        dirs = [rng.normal(size=K), rng.normal(size=(K, d)),
                np.tril(rng.normal(size=(K, d, d)))]  # fmt: skip
        norm = np.sqrt(sum(np.sum(v**2) for v in dirs))
        eta = np.log(nm["weights"]) + t * dirs[0] / norm
        L = np.linalg.cholesky(nm["covariances"]) + t * dirs[2] / norm
        moved = mixture.GaussianMixture(
            np.exp(eta - logsumexp(eta)), nm["means"] + t * dirs[1] / norm, L
        )
        return MixtureAt(self, moved)

    def label_parameter(self, name):
        """The parameter ``name`` of every component, (K, ...): 'mu' the
        means, 'Sigma' the covariances, 'L' their Cholesky factors, 'eta'
        the centred logits (log pi minus its mean: softmax(eta) = pi)."""
        nm = self.names
        return _label_table(nm["weights"], nm["means"], nm["covariances"], name)

    def z_rule(self, level):
        n = self.x.shape[0]
        Z = np.broadcast_to(np.arange(self.K), (n, 1, self.K))
        return Z, np.zeros((n, 1, self.K))

    def x_rule(self, level):
        raise Unsupported("the mixture setting has no integral over x")

    def z_points(self):
        return self.z_rule(0)[0]

    def x_data(self):
        return self._x_data


def _label_table(weights, means, covariances, name):
    """Component ``name`` of a Gaussian mixture for every component, (K, ...)."""
    if name == "mu":
        return np.asarray(means)
    if name == "Sigma":
        return np.asarray(covariances)
    if name == "L":
        return np.linalg.cholesky(covariances)
    if name == "eta":  # centred logits: softmax(eta) = pi, exp(eta) != pi
        log_w = np.log(weights)
        return log_w - np.mean(log_w)
    raise Unsupported(f"a mixture component has no parameter {name!r}")


class MixtureAt(_OnBase):
    """A :class:`DiscreteModel` at other mixture parameters ``model`` (a
    ``refvi.models.mixture.GaussianMixture``): its densities are tables at
    the base's data, its q the base's (q is not a parameter of the model)."""

    discrete = True
    gaussian = False

    def __init__(self, base, model):
        self.base, self.label, self.variant, self.x = (
            base, base.label, base.variant, base.x)  # fmt: skip
        n = self.x.shape[0]
        prior = np.broadcast_to(mixture.log_prior(model), (n, base.K))
        lik = mixture.log_lik(model, self.x)
        self.tables = {"prior": prior, "lik": lik, "joint": prior + lik,
                       "post": mixture.log_responsibilities(model, self.x)}  # fmt: skip
        self.log_px = mixture.log_marginal(model, self.x)
        self.model = model

    def label_parameter(self, name):
        """The parameters of the components at this value (``DiscreteModel``)."""
        m = self.model
        return _label_table(m.weights, m.means, m.dense_covariances(), name)

    def log_density(self, kind, X, Z):
        if X is not self.base.x_data():
            raise Unsupported("the mixture setting has no density at other x")
        if kind == "marginal":
            return self.log_px[:, None, None]
        if kind == "q":
            return self.base.log_density(kind, X, Z)
        if kind not in self.tables:
            raise Unsupported(f"the mixture setting has no density '{kind}'")
        n, a, m = Z.shape
        table = self.tables[kind]
        Zi = np.reshape(Z, (n, a * m)).astype(int)
        return np.take_along_axis(table, Zi, axis=1).reshape(n, a, m)


class PairModel:
    """The derivation checker's ``gaussian`` setting, seen by the evaluator:
    two Gaussians p = N(mu_p, L_p L_p^T) and q = N(mu_q, L_q L_q^T) of one
    variable; in one dimension p = N(mu_1, sigma_1^2) and q = N(mu_2,
    sigma_2^2) (the convention of indices 1 and 2 for the first and second
    density). Integrals over the variable exist in at most two dimensions.

    ``p`` and ``q`` are densities of whichever variable they are written in
    (``p(x)``, ``q(z)``, or bare in ``KL(p, q)``); ``\\mu_1``, ``\\sigma_1``,
    ``\\mu_2``, ``\\sigma_2`` are their parameters (:meth:`pair_parameter`).
    A free variable is evaluated at test points spread over both densities;
    integrals use the trapezoid rule of the other models on a box covering
    both.
    """

    discrete = False
    gaussian = True
    pair = True

    def __init__(self, instance, label, variant=None):
        names = instance.names
        if variant:
            raise Unsupported(f"the gaussian setting has no variant {dict(variant)}")
        self.label, self.variant, self.names = label, {}, names
        self.k = self.d = int(names["d"])
        self.mean = {"p": names["mu_p"], "q": names["mu_q"]}
        self.L = {"p": names["L_p"], "q": names["L_q"]}
        means = np.stack([self.mean["p"], self.mean["q"]])
        stds = np.stack([_stds(self.L["p"]), _stds(self.L["q"])])
        self.box = _Box.cover(means, stds)
        self.x = self.box.test_points()  # (m, d): the points of a free variable
        self._rules = {}
        self._pair_memo = {"p": {}, "q": {}}

    def matrix_symbol(self, name):
        """p's and q's parameters in matrix notation (``MATRIX_SYMBOLS``):
        ``\\mu_p``, ``L_p``, ``\\Sigma_p`` and q's; bare ``\\mu``, ``L``,
        ``\\Sigma`` are p's (p = N(mu, Sigma), Sigma = L L^T), ``\\sigma`` the
        column of L's diagonal (p's standard deviations when p is diagonal)."""
        if name not in MATRIX_SYMBOLS["gaussian"]:
            raise Unsupported(f"{name}: no such matrix in the gaussian setting")
        if name == "d":
            return float(self.d)
        if name == "\\sigma":
            return Mat.of(np.diag(self.L["p"]))
        if name == "I":
            return Eye(np.ones((1, 1, 1, 1, 1)))
        base, _, which = name.partition("_")
        key = {"\\mu": "mu", "L": "L", "\\Sigma": "Sigma"}[base]
        return Mat.of(self.names[f"{key}_{which or 'p'}"])

    def parameter(self, name):
        """(array, free entries, per datum) of p's or q's mean or Cholesky
        factor named ``name`` in matrix notation (``derivatives``)."""
        key = self._parameter_key(name)
        value = np.array(self.names[key], dtype=np.float64)
        free = np.ones(value.shape, bool) if key[0] == "m" else np.tri(self.d) > 0
        return value, free, False

    def _parameter_key(self, name):
        base, _, which = name.partition("_")
        key = {"\\mu": "mu", "L": "L"}.get(base)
        if key is None or which not in ("", "p", "q"):
            raise Unsupported(
                f"a derivative in {name}: the gaussian setting moves \\mu_p, L_p, "
                "\\mu_q, L_q (\\mu, L: p's)"
            )
        return f"{key}_{which or 'p'}"

    def moved(self, name, value):
        """This instance with the parameter ``name`` set to ``value``
        (``Sigma`` follows ``L``); the same points and rules."""
        key = self._parameter_key(name)
        out = copy.copy(self)
        out.names = dict(self.names)
        out.names[key] = value
        which = key[-1]
        out._pair_memo = {**self._pair_memo, which: {}}
        if key[0] == "L":
            out.names[f"Sigma_{which}"] = value @ value.T
            out.L = {**self.L, which: value}
        else:
            out.mean = {**self.mean, which: value}
        return out

    def pair_parameter(self, name, index):
        """``mu`` or ``sigma`` of density ``index`` (1: p, 2: q), one
        dimension."""
        if self.d != 1:
            raise Unsupported(
                f"\\{name}_{index} of a {self.d}-dimensional Gaussian: write "
                "\\mu_p, \\Sigma_p, L_p"
            )
        which = {1: "p", 2: "q"}.get(index)
        if which is None:
            raise Unsupported(
                f"\\{name}_{index}: the gaussian setting has two densities, 1 and 2"
            )
        if name == "mu":
            return float(self.mean[which][0])
        return float(self.L[which][0, 0])

    def log_pair(self, symbol, points):
        """log p or log q at ``points`` (..., d), remembered per density for
        the instance's own point arrays (a moved copy keeps the memo of the
        density it did not move: a derivative moves one at a time)."""
        memo = self._pair_memo[symbol]
        hit = memo.get(id(points))
        if hit is not None and hit[0] is points:
            return hit[1]
        value = _gauss(points, self.mean[symbol], self.L[symbol])
        if any(points is r[0] for r in self._rules.values()):  # a rule's nodes
            memo[id(points)] = (points, value)
        return value

    def log_density(self, kind, X, Z):
        raise Unsupported(
            "the gaussian setting has two densities p and q of one variable, "
            "no latent-variable model"
        )

    def z_rule(self, level):
        if self.d > 2:
            raise Unsupported(f"an integral in d = {self.d} dimensions (at most 2)")
        if ("z", level) not in self._rules:
            nodes, logw = self.box.rule(level)
            self._rules["z", level] = (nodes[None, None], logw[None, None])
        return self._rules["z", level]

    def x_rule(self, level):
        if self.d > 2:
            raise Unsupported(f"an integral in d = {self.d} dimensions (at most 2)")
        return _cached_x_rule(self, self.box, level)

    def z_points(self):
        return self.x[None, None]

    def x_data(self):
        return self.x[:, None, None, :]


def _random_chol(rng, k, scale):
    M = rng.normal(size=(k, k)) * 0.3
    L = np.tril(M, -1) + np.diag(scale * np.exp(rng.uniform(-0.3, 0.3, size=k)))
    return L


class AggregatedModel:
    """The derivation checker's ``aggregated`` setting, seen by the evaluator.

    Its densities are functions of test points z (m, 1) and points x (N, d)
    (``log_enc``, ``log_post``, ``log_prior``, ``log_pdata``, ``log_pmodel``,
    ``log_q_agg``); the free x of a line is each of its ``x_test`` points.
    p(x|z) and p(x, z) follow from the posterior and the marginal by Bayes'
    rule. Variants: ``q`` = 'exact' (the posterior), 'prior' (q(z|x) = p(z)),
    'flip' (the setting's mirrored encoder); ``data`` = 'model' (p_theta(x)),
    'data2' (the setting's p_data2, which differs from p_theta only where the
    posterior mean does not look).
    """

    discrete = False
    data_distribution = True  # p_data(x): the mean over the data is E_{p_data}
    gaussian = True
    _Q = {"encoder": "log_enc", "exact": "log_post", "prior": "log_enc_prior",
          "flip": "log_enc_flip"}  # fmt: skip
    _DATA = {"data": "log_pdata", "model": "log_pmodel", "data2": "log_pdata2"}

    def __init__(self, instance, label, variant=None):
        names = instance.names
        self.names, self.variant, self.label = names, dict(variant or {}), label
        self.x = names["x_test"]
        self.k, self.d = 1, self.x.shape[1]
        self._rules, self._memo = {}, {}
        self._x_data = self.x[:, None, None, :]
        q, data = self.variant.get("q", "encoder"), self.variant.get("data", "data")
        if q not in self._Q or data not in self._DATA:
            raise Unsupported(f"the aggregated setting has no variant {self.variant}")
        self._q, self._data = self._Q[q], self._DATA[data]
        self._boxes()

    def matrix_symbol(self, name):
        """The array of the symbol ``name`` (``MATRIX_SYMBOLS['aggregated']``):
        the setting's own, ``\\mu`` its ``mu``, ``m_{data}`` its ``m_data``."""
        if name not in MATRIX_SYMBOLS["aggregated"]:
            raise Unsupported(f"{name}: no such matrix in the aggregated setting")
        if name in ("d", "k"):
            return float(self.d if name == "d" else self.k)
        if name == "I":
            return Eye(np.ones((1, 1, 1, 1, 1)))
        key = {"\\mu": "mu", "\\psi": "psi"}.get(name, name)
        return Mat.of(self.names[key])

    def _pairs(self, fn, X, Z):
        """``fn(z (m, 1), x (N, d)) -> (N, m)`` on the broadcast (n, Mx, Mz)."""
        n = max(X.shape[0], Z.shape[0])
        return np.stack(
            [
                fn(Z[min(i, Z.shape[0] - 1), 0], X[min(i, X.shape[0] - 1), :, 0])
                for i in range(n)
            ]
        )

    def _of_z(self, name, Z):
        f = self.names[name]
        return np.stack([f(Z[i, 0])[None, :] for i in range(Z.shape[0])])

    def _of_x(self, name, X):
        f = self.names[name]
        return np.stack([f(X[i, :, 0])[:, None] for i in range(X.shape[0])])

    def log_density(self, kind, X, Z):
        if kind == "prior":
            return self._of_z("log_prior", Z)
        if kind == "marginal":
            return self._of_x("log_pmodel", X)
        if kind == "data":
            return self._of_x(self._data, X)
        if kind == "data2":
            return self._of_x("log_pdata2", X)
        if kind == "post":
            return self._pairs(self.names["log_post"], X, Z)
        if kind == "joint":
            return self.log_density("post", X, Z) + self._of_x("log_pmodel", X)
        if kind == "lik":
            return self.log_density("joint", X, Z) - self._of_z("log_prior", Z)
        if kind == "q":
            return self._pairs(self.names[self._q], X, Z)
        if kind == "agg":
            if not self.variant:
                return self._of_z("log_q_agg", Z)
            X, logw = self.x_rule(0)  # no closed form: quadrature over x
            vals = self.log_density("q", X, Z) + self.log_density("data", X, Z)
            return logsumexp(vals + logw, axis=1, keepdims=True)
        raise ValueError(f"unknown density kind {kind!r}")

    def _boxes(self):
        nm = self.names
        M, S, A, b, s = nm["M"], nm["S"], nm["A"], nm["b"], nm["sigma_q"]
        xs = np.vstack(
            [self.x, nm["m_data"][None], nm["m_data2"][None], nm["mu"][None]]
        )
        z_means = np.concatenate([[0.0], (xs - nm["mu"]) @ M[0], xs @ A[0] + b[0]])
        z_means = np.concatenate([z_means, -z_means])  # the mirrored encoder
        z_stds = [1.0, np.sqrt(S[0, 0]), s]
        for C in (nm["C_data"], nm["C"], nm["C_data2"]):
            z_stds.append(np.sqrt(A @ C @ A.T + s**2).item())
            z_stds.append(np.sqrt(M @ C @ M.T + S).item())
        self.z_box = _Box.cover(
            z_means[:, None], np.full((z_means.size, 1), max(z_stds))
        )
        self.z_box.sigma_min = min(z_stds)
        covs = [nm["C_data"], nm["C"], nm["C_data2"]]
        x_means = np.vstack([nm["m_data"], nm["mu"], nm["m_data2"]])
        x_stds = np.vstack([np.sqrt(np.diag(C)) for C in covs])
        self.x_box = _Box.cover(x_means, x_stds)
        ridges = [s / np.max(np.abs(A)), np.sqrt(S[0, 0]) / np.max(np.abs(M))]
        self.x_box.sigma_min = min(self.x_box.sigma_min, *ridges)

    def z_rule(self, level):
        return _cached_z_rule(self, level)

    def x_rule(self, level):
        return _cached_x_rule(self, self.x_box, level)

    def z_points(self):
        if "points" not in self._rules:
            pts = self.names["z"]
            self._rules["points"] = (
                np.broadcast_to(pts, (self.x.shape[0], 1) + pts.shape),
            )
        return self._rules["points"][0]

    def x_data(self):
        return self._x_data


#: The symbols of matrix notation each setting binds to its instance's arrays
#: (``ContinuousModel.matrix_symbol``, ``AggregatedModel.matrix_symbol``):
#: the model's W, mu, psi, Psi = diag(psi), C = W W^T + Psi (the model's
#: ``cov``), the posterior's S (``linear_gaussian.posterior``), q's m_q,
#: L_q, Sigma_q = L_q L_q^T, identities I_k, I_d and the dimensions d, k; in
#: linear_gaussian also the posterior's m and the setting's P = Psi^{-1},
#: M = I + W^T P W (L_M its Cholesky factor), A = S W^T P, b = C^{-1} r and
#: r = x - mu. (In the amortized setting m and A name the encoder's mean and
#: matrix, which derivations write m_i = A x_i + c: neither is bound there.)
_LG_SYMBOLS = ("W", "\\mu", "\\psi", "\\Psi", "C", "S", "m_q", "L_q",
               "\\Sigma_q", "I", "I_k", "I_d", "d", "k", *DATA_STATISTICS)  # fmt: skip
MATRIX_SYMBOLS = {
    "mixture_pair": MIXTURE_PAIR_SYMBOLS,
    "categorical": CATEGORICAL_SYMBOLS,
    "linear_gaussian": _LG_SYMBOLS + ("m", "P", "M", "L_M", "A", "b", "r"),
    "amortized": _LG_SYMBOLS,
    "mixture_prior": (
        "W",
        "\\mu",
        "\\psi",
        "\\Psi",
        "I",
        "I_k",
        "I_d",
        "d",
        "k",
        "J",
        "\\pi[]",
        "a[]",
        "B[]",
        "L_B[]",
        "C[]",
        "m[]",
        "S[]",
        "P[]",
    ),
    "gaussian": (
        "\\mu",
        "L",
        "\\Sigma",
        "\\mu_p",
        "L_p",
        "\\Sigma_p",
        "\\mu_q",
        "L_q",
        "\\Sigma_q",
        "\\sigma",
        "I",
        "d",
    ),  # fmt: skip
    "aggregated": (
        "W",
        "\\mu",
        "\\psi",
        "C",
        "M",
        "S",
        "A",
        "b",
        "m_data",
        "C_data",
        "m_data2",
        "C_data2",
        "I",
        "d",
        "k",
    ),  # fmt: skip
}


def matrix_symbols(settings):
    """The symbols of matrix notation the ``settings`` ((name, options), ...)
    bind: those of any of them (a setting without one leaves its line)."""
    out = set()
    for name, _ in settings:
        own = MATRIX_SYMBOLS.get(name)  # a layer's own, else its base's
        out.update(own or MATRIX_SYMBOLS.get(LAYERED.get(name, (name,))[0], ()))
    return frozenset(out)


#: Settings of the LaTeX checker: issue-5 settings (refvi.checker.settings)
#: with their options, and the aggregated-posterior layer on two of them.
LAYERED = {"aggregated_mixture_prior": ("mixture_prior", ()),
           "mixture_pair": ("mixture_prior", ())}  # fmt: skip
SETTINGS = ("linear_gaussian", "mixture_prior", "mixture", "aggregated", "gaussian",
            "amortized", "categorical", *LAYERED, *EM_SETTINGS)  # fmt: skip
#: Settings whose densities are all Gaussian ("gaussian" is the derivation
#: checker's pair of Gaussians, read by the LaTeX checker in one dimension).
GAUSSIAN_SETTINGS = ("linear_gaussian", "aggregated", "gaussian", "amortized")


def _instance(base, seed, options):
    """Instance ``seed`` of the derivation checker's setting ``base``, shared
    by every variant and layer built on it and with the check blocks
    (``checker.instances``: one cache, deep-frozen)."""
    from refvi.checker.instances import make_instance  # imports the settings

    return make_instance(base, options, seed)


@lru_cache(maxsize=128)
def make_model(setting, seed, options=(), variant=()):
    """The evaluator's view of instance ``seed`` of ``setting``.

    ``options`` are the setting's options (``(("k", "1"),)``); ``variant``
    holds assumptions (``("data", "model")``, ``("q", "exact")``).
    """
    if setting == "mixture_pair":  # its own instances, drawn from the seed
        if options:
            raise Unsupported("the mixture_pair setting takes no options")
        return MixturePairModel(seed, f"{setting}/{seed}", dict(variant))
    base, layered_options = LAYERED.get(setting, (setting, ()))
    if base not in ("linear_gaussian", "mixture_prior", "mixture", "aggregated",
                    "gaussian", "amortized", "categorical", *EM_SETTINGS):  # fmt: skip
        raise Unsupported(
            f"setting {setting!r} is not a latent-variable model the LaTeX checker "
            f"knows; known: {', '.join(SETTINGS)}"
        )
    opts = dict(layered_options + tuple(options))
    instance = _instance(base, seed, tuple(sorted(opts.items())))
    # the options are part of the label: gaussian(d=3) is not gaussian
    shown = f"({', '.join(f'{k}={v}' for k, v in options)})" if options else ""
    label = f"{setting}{shown}/{seed}" + "".join(f",{k}={v}" for k, v in variant)
    if base == "gaussian":
        return PairModel(instance, label, dict(variant))
    if base == "categorical":
        return CategoricalModel(instance, label, dict(variant))
    if base == "aggregated":
        return AggregatedModel(instance, label, dict(variant))
    if base == "mixture":
        return DiscreteModel(instance, label, dict(variant))
    if base in EM_SETTINGS:
        return EMStepModel(instance, label, dict(variant))
    layer = Aggregate.draw(instance) if setting in LAYERED else None
    if base == "amortized":
        layer = Aggregate.of_amortized(instance)
    return ContinuousModel(instance, label, dict(variant), layer)
