"""Model instances as the LaTeX evaluator sees them: densities of (x, z).

The evaluator (``evaluate.py``) needs every density as a function of both x
and z at broadcast points -- for integrals over x (the aggregated posterior,
expectations under p_data) as well as over z. This module builds such objects
from refvi's model parameters, using each model's own log-density code
(``refvi.gaussian``, ``refvi.models.*``):

- ``linear_gaussian``: z ~ N(0, I_k), x | z ~ N(W z + mu, diag(psi)); q(z|x) a
  linear Gaussian encoder N(A x + b, diag(s^2)); p_data(x) a Gaussian.
- ``mixture_prior``: the same with z ~ sum_j pi_j N(a_j, B_j): the posterior is
  a Gaussian mixture, the non-Gaussian setting every check includes.
- ``mixture``: a Gaussian mixture, z in {0..K-1} discrete, q(z|x) categorical.
- ``aggregate``: ``linear_gaussian`` with p_data(x) and the aggregated posterior
  q(z) = int q(z|x) p_data(x) dx = N(A m_x + b, A S_x A^T + diag(s^2)) in
  closed form.

Variants (``data='model'``: p_data is the model marginal; ``q='exact'``: q(z|x)
is the exact posterior) express a section's assumptions.

Integrals over a continuous variable use the trapezoid rule on a box
covering every density of the instance (8 standard deviations past the
outermost component), with step h = sigma_min / 4: for integrands analytic
in a strip the error decays like exp(-2 pi^2 w^2 / h^2) with w the strip's half-width
(about sigma for a Gaussian, less for the log of a mixture); level 1 uses
h = sigma_min / 2.5 and the difference is the error estimate.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import logsumexp

from refvi.gaussian import _log_prob_chol, _log_prob_whitened
from refvi.models import linear_gaussian as lg
from refvi.models import mixture
from refvi.models import mixture_prior as mp
from refvi.models.linear_gaussian import LinearGaussian
from refvi.models.mixture import GaussianMixture
from refvi.models.mixture_prior import MixturePrior

SETTINGS = ("linear_gaussian", "mixture_prior", "mixture", "aggregate")
GAUSSIAN_SETTINGS = ("linear_gaussian", "aggregate")
_STEPS = (4.0, 2.5)  # sigma_min / h at level 0 and level 1
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


class ContinuousModel:
    """A model with continuous z and a linear-Gaussian likelihood.

    Parameters
    ----------
    label : str
    model : LinearGaussian or MixturePrior
    x : ndarray (n, d)
        The data (the free x of a line).
    A, b, s : ndarrays (k, d), (k,), (k,)
        Encoder q(z|x) = N(A x + b, diag(s^2)).
    data : (m_x (d,), L_x (d, d)) or 'model'
        p_data(x) = N(m_x, L_x L_x^T), or the model marginal.
    q : 'encoder' or 'exact'
    """

    discrete = False

    def __init__(self, label, model, x, A, b, s, data, q="encoder"):
        self.label, self.model, self.x = label, model, x
        self.A, self.b, self.L_q = A, b, np.diag(s)
        self.data, self.q = data, q
        self.k, self.d = model.k, model.d
        self.gaussian = isinstance(model, LinearGaussian)
        self.lik = model if self.gaussian else model.likelihood
        self.m_x, self.L_x = (None, None) if data == "model" else data
        self._memo, self._rules = {}, {}
        self._x_data = x[:, None, None, :]
        self._boxes()

    # -- densities -----------------------------------------------------------
    def _log_prior(self, Z):
        if self.gaussian:
            return _flat(lambda z: lg.log_prior(self.model, z), Z)
        return _flat(lambda z: mp.log_prior(self.model, z), Z)

    def _log_lik(self, X, Z):
        mean = np.einsum("dk,...k->...d", self.lik.W, Z) + self.lik.mu
        return _gauss(X, mean, np.diag(np.sqrt(self.lik.psi)))

    def _memo_call(self, name, fn, A):
        """``fn(A)``, remembered when ``A`` is one of the instance's own point
        arrays (the data, the rule nodes, the test points): every line reuses
        them, and the identity check makes a stale hit impossible."""
        hit = self._memo.get((name, id(A)))
        if hit is not None and hit[0] is A:
            return hit[1]
        value = fn(A)
        if A is self._x_data or any(A is r[0] for r in self._rules.values()):
            self._memo[name, id(A)] = (A, value)
        return value

    def _log_marginal(self, X):
        return self._memo_call("marginal", self._log_marginal_uncached, X)

    def _log_marginal_uncached(self, X):
        if self.gaussian:
            return _flat(lambda x: lg.log_marginal(self.model, x), X)
        return _flat(lambda x: mp.log_marginal(self.model, x), X)

    def _log_encoder(self, X, Z):
        mean = np.einsum("kd,...d->...k", self.A, X) + self.b
        return _gauss(Z, mean, self.L_q)

    def _log_data(self, X):
        return self._memo_call("data", self._log_data_uncached, X)

    def _log_data_uncached(self, X):
        if self.data == "model":
            return self._log_marginal(X)
        return _gauss(X, self.m_x, self.L_x)

    def _log_agg(self, Z):
        return self._memo_call("agg", self._log_agg_uncached, Z)

    def _log_agg_uncached(self, Z):
        if self.data == "model" or self.q == "exact":
            # q(z) = int q(z|x) p_data(x) dx without a closed form: quadrature
            X, logw = self.x_rule(0)
            Zb = np.asarray(Z)[..., None, :]
            Xb = X.reshape(-1, self.d)
            vals = self.log_density("q", Xb, Zb) + self._log_data(Xb)
            return logsumexp(vals + logw.reshape(-1), axis=-1)
        mean = self.A @ self.m_x + self.b
        AL = self.A @ self.L_x
        cov = AL @ AL.T + self.L_q @ self.L_q.T
        return _gauss(Z, mean, np.linalg.cholesky(cov))

    def log_density(self, kind, X, Z):
        if kind == "prior":
            return self._log_prior(Z)
        if kind == "lik":
            return self._log_lik(X, Z)
        if kind == "joint":
            return self._log_prior(Z) + self._log_lik(X, Z)
        if kind == "marginal":
            return self._log_marginal(X)
        if kind == "post":
            return self._log_prior(Z) + self._log_lik(X, Z) - self._log_marginal(X)
        if kind == "q":
            if self.q == "exact":
                return self.log_density("post", X, Z)
            return self._log_encoder(X, Z)
        if kind == "agg":
            return self._log_agg(Z)
        if kind == "data":
            return self._log_data(X)
        raise ValueError(f"unknown density kind {kind!r}")

    # -- quadrature ------------------------------------------------------------
    def _boxes(self):
        """Boxes covering every density in z (per datum) and in x."""
        means, stds = [], []
        if self.gaussian:
            means.append(np.zeros((1, self.k)))
            stds.append(np.ones((1, self.k)))
            post = lg.posterior(self.model, self.x)
            means.append(post.m)
            stds.append(np.broadcast_to(_stds(post.L_S), post.m.shape))
        else:
            means.append(self.model.a)
            stds.append(_stds(self.model.L_B))
            post = mp.posterior(self.model, self.x)
            means.append(post.m.reshape(-1, self.k))
            stds.append(np.tile(_stds(post.L_S), (self.x.shape[0], 1)))
        means.append(self.x @ self.A.T + self.b)
        stds.append(np.broadcast_to(np.diag(self.L_q), (self.x.shape[0], self.k)))
        # x: the data distribution (or the model marginal) and the data
        if self.data == "model":
            x_means, x_stds = self._marginal_components()
        else:
            x_means, x_stds = self.m_x[None], _stds(self.L_x)[None]
        x_box = _Box.cover(
            np.vstack([x_means, self.x]),
            np.vstack([x_stds, np.broadcast_to(x_stds[:1], self.x.shape)]),
        )
        # the encoder as a function of x is a ridge of width s / |A|
        ridge = np.min(np.diag(self.L_q)) / max(np.max(np.abs(self.A)), 1e-12)
        x_box.sigma_min = min(x_box.sigma_min, ridge)
        self.x_box = x_box
        # aggregated posterior in z
        if self.data != "model":
            AL = self.A @ self.L_x
            agg_cov = AL @ AL.T + self.L_q @ self.L_q.T
            means.append((self.A @ self.m_x + self.b)[None])
            stds.append(np.sqrt(np.diag(agg_cov))[None])
        self.z_box = _Box.cover(np.vstack(means), np.vstack(stds))

    def _marginal_components(self):
        lik = self.lik
        if self.gaussian:
            return lik.mu[None], np.sqrt(np.diag(lik.W @ lik.W.T + np.diag(lik.psi)))[
                None
            ]
        WL = np.einsum("dk,jkl->jdl", lik.W, self.model.L_B)
        cov = np.einsum("jdl,jel->jde", WL, WL) + np.diag(lik.psi)
        means = self.model.a @ lik.W.T + lik.mu
        return means, np.sqrt(np.einsum("jdd->jd", cov))

    def z_rule(self, level):
        if ("z", level) not in self._rules:
            nodes, logw = self.z_box.rule(level)
            n = self.x.shape[0]
            self._rules["z", level] = (
                np.broadcast_to(nodes, (n, 1) + nodes.shape),
                np.broadcast_to(logw, (n, 1, logw.shape[0])),
            )
        return self._rules["z", level]

    def x_rule(self, level):
        if ("x", level) not in self._rules:  # the same arrays each time (memo)
            nodes, logw = self.x_box.rule(level)
            self._rules["x", level] = (nodes[None, :, None, :], logw[None, :, None])
        return self._rules["x", level]

    def z_points(self):
        if "points" not in self._rules:
            pts = self.z_box.test_points()
            self._rules["points"] = (
                np.broadcast_to(pts, (self.x.shape[0], 1) + pts.shape),
            )
        return self._rules["points"][0]

    def x_data(self):
        return self._x_data


class DiscreteModel:
    """A Gaussian mixture: z in {0, ..., K-1}, q(z|x) categorical per datum."""

    discrete = True
    gaussian = False

    def __init__(self, label, model, x, q_logits):
        self.label, self.model, self.x = label, model, x
        self.k, self.d = 1, model.means.shape[1]
        self.K = model.weights.shape[0]
        self.tables = {
            "prior": np.broadcast_to(mixture.log_prior(model), (x.shape[0], self.K)),
            "lik": mixture.log_lik(model, x),
            "joint": mixture.log_joint(model, x),
            "post": mixture.log_responsibilities(model, x),
            "q": q_logits - logsumexp(q_logits, axis=1, keepdims=True),
        }
        self.log_px = mixture.log_marginal(model, x)

    def log_density(self, kind, X, Z):
        if X.shape[1] != 1:
            raise ValueError("the mixture setting has no density of a bound x")
        if kind in ("marginal",):
            return self.log_px[:, None, None]
        if kind not in self.tables:
            from refvi.verify.latex.ir import Unsupported

            raise Unsupported(f"the mixture setting has no density '{kind}'")
        table = self.tables[kind]  # (n, K)
        Z = np.broadcast_to(Z, (table.shape[0],) + Z.shape[1:])
        flat = Z.reshape(Z.shape[0], -1)
        return np.take_along_axis(table, flat, axis=1).reshape(Z.shape)

    def z_rule(self, level):
        n = self.x.shape[0]
        Z = np.broadcast_to(np.arange(self.K), (n, 1, self.K))
        return Z, np.zeros((n, 1, self.K))

    def x_rule(self, level):
        from refvi.verify.latex.ir import Unsupported

        raise Unsupported("the mixture setting has no integral over x")

    def z_points(self):
        return self.z_rule(0)[0]

    def x_data(self):
        return self.x[:, None, None, :]


def _random_chol(rng, k, scale):
    M = rng.normal(size=(k, k)) * 0.3
    L = np.tril(M, -1) + np.diag(scale * np.exp(rng.uniform(-0.3, 0.3, size=k)))
    return L


@lru_cache(maxsize=128)
def make_model(setting, seed, n=2, variant=()):
    """A random instance of ``setting`` as an evaluator model.

    ``variant`` holds (key, value) pairs: ('data', 'model') and ('q', 'exact').
    """
    opts = dict(variant)
    rng = np.random.default_rng(seed)
    if setting == "mixture":
        K, d = 3, 2
        model = GaussianMixture(
            rng.dirichlet(np.full(K, 3.0)),
            rng.normal(scale=2.0, size=(K, d)),
            np.stack([_random_chol(rng, d, 1.0) for _ in range(K)]),
        )
        x = rng.normal(scale=2.0, size=(n, d))
        return DiscreteModel(f"mixture/{seed}", model, x, rng.normal(size=(n, K)))
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; known: {', '.join(SETTINGS)}")
    k = 1
    d = 2
    W = rng.normal(size=(d, k))
    mu = rng.normal(size=d)
    psi = np.exp(rng.uniform(-1.0, 0.0, size=d))
    if setting == "mixture_prior":
        J = 2
        model = MixturePrior(
            rng.dirichlet(np.full(J, 4.0)),
            rng.normal(scale=1.5, size=(J, k)),
            np.stack([_random_chol(rng, k, 0.6) for _ in range(J)]),
            W,
            mu,
            psi,
        )
    else:
        model = LinearGaussian(W, mu, psi)
    x = mu + rng.normal(scale=1.5, size=(n, d))
    A = rng.normal(scale=0.4, size=(k, d))
    b = rng.normal(scale=0.3, size=k)
    s = np.exp(rng.uniform(-0.8, -0.2, size=k))
    data = (mu + rng.normal(scale=0.5, size=d), _random_chol(rng, d, 1.2))
    if opts.get("data") == "model":
        data = "model"
    label = f"{setting}/{seed}" + "".join(f",{k}={v}" for k, v in sorted(opts.items()))
    return ContinuousModel(label, model, x, A, b, s, data, q=opts.get("q", "encoder"))
