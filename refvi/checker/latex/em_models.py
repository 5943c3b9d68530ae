"""One EM step as the LaTeX evaluator sees it: the ``em_*`` settings.

An instance of ``em_linear_gaussian`` or ``em_mixture`` (``refvi.checker.
settings.em``) holds a data set x, the parameters theta an EM step starts
from, the exact M-step's theta' (``..._em.m_step`` from the E-step's
posterior) and the variational M-step's theta'' (from a restricted q, which
cannot hold the posterior). Its densities are the instance's own functions
at the data: the joint and the posterior at theta, theta' and theta'', the
marginal at each, and q, the restricted distribution (written q or
\\hat q; the E-step's optimum q^* is the posterior at theta).

In this setting theta is the step's start, so ``\\theta^{old}`` (``\\theta^{(t)}``)
is theta itself; ``\\theta^{new}`` (``\\theta'``, ``\\theta^{(t+1)}``) is
theta' and ``\\theta''`` is theta''.

Expectations over a discrete z are exact sums over its K values. Over a
continuous z (every integrand is the posterior or q, both centred at the
datum's posterior mean, times a polynomial) they use the trapezoid rule on a
box in the posterior's whitened coordinates, aligned with q's principal axes
there: along each axis the step is h = sigma_min / s and the half-width
8 sigma_max, with sigma_min, sigma_max the smaller and larger of the two
densities' widths along it. For a Gaussian times a polynomial the error
decays like exp(-2 pi^2 s^2): s = 2 and 1.5 at levels 0 and 1 (their
difference is the error estimate), 3 and 2.5 at the refined levels; the
tails beyond 8 sigma are below exp(-32).
"""

import numpy as np

from refvi.checker.latex.ir import Unsupported

#: Settings of one EM step, and the suffix of each parameter value's names.
EM_SETTINGS = ("em_linear_gaussian", "em_mixture")
_SUFFIX = {"": "", "old": "", "new": "_new", "vnew": "_vnew"}
#: sigma / h of the trapezoid rule at levels 0, 1 and refined 2, 3, and the
#: box's half-width in units of sigma.
_STEPS = (2.0, 1.5, 3.0, 2.5)
_HALF_WIDTH = 8.0


class EMStepModel:
    """An ``em_*`` instance at the parameters ``at`` ('' / 'old': theta;
    'new': theta'; 'vnew': theta''); see the module docstring."""

    gaussian = False
    second_step = True  # theta'': the M-step from the restricted q

    def __init__(self, instance, label, variant=None, at="", base=None):
        if variant:
            raise Unsupported(
                f"variant {dict(variant)} exists only in the aggregated setting"
            )
        self.names, self.label, self.at = instance.names, label, at
        self.instance = instance
        self.variant = {}
        self.x = self.names["x"]
        self.discrete = "K" in self.names
        self.k = 1 if self.discrete else self.names["m_post"].shape[1]
        self.d = self.x.shape[1]
        # a version shares its base's points and rules (the scope's arrays)
        self._x_data = self.x[:, None, None, :] if base is None else base._x_data
        self._rules = {} if base is None else base._rules
        self._versions = {} if base is None else base._versions

    def version(self, at):
        """The same step at the parameters ``at`` (theta^{old} is theta)."""
        if _SUFFIX[at] == _SUFFIX[self.at]:
            return self
        if at not in self._versions:
            self._versions[at] = EMStepModel(self.instance, self.label, at=at,
                                             base=self)  # fmt: skip
        return self._versions[at]

    def log_density(self, kind, X, Z):
        if X is not self._x_data:
            raise Unsupported("an EM setting has densities at its data only")
        suffix = _SUFFIX[self.at]
        if kind == "marginal":
            return self.names["log_px" + suffix][:, None, None]
        if kind == "q":
            if self.variant.get("q") == "exact":
                kind = "post"
            else:
                return self._table("log_q", Z)
        if kind in ("joint", "post"):
            return self._table(f"log_{kind}{suffix}", Z)
        raise Unsupported(
            f"an EM setting has no density '{kind}' (it has the joint, the "
            "posterior, the marginal and q)"
        )

    def _table(self, name, Z):
        """The instance's function ``name`` at the z points Z, remembered for
        the setting's own point arrays (every line reuses them; the identity
        check makes a stale hit impossible)."""
        own = any(Z is r[0] for r in self._rules.values() if isinstance(r, tuple))
        own = own or Z is self._rules.get("points")
        if not own:
            return self._evaluate(name, Z)
        memo = self._rules.setdefault("memo", {})
        hit = memo.get((name, id(Z)))
        if hit is None or hit[0] is not Z:
            hit = memo[name, id(Z)] = (Z, self._evaluate(name, Z))
        return hit[1]

    def _evaluate(self, name, Z):
        fn = self.names[name]
        if self.discrete:
            n, a, m = Z.shape
            return fn(np.reshape(Z, (n, a * m))).reshape(n, a, m)
        n, a, m, k = Z.shape
        return fn(np.reshape(Z, (n, a * m, k))).reshape(n, a, m)

    # -- rules -------------------------------------------------------------------
    def z_rule(self, level):
        if ("z", level) not in self._rules:
            self._rules["z", level] = self._z_rule(level)
        return self._rules["z", level]

    def _z_rule(self, level):
        n = self.x.shape[0]
        if self.discrete:
            K = int(self.names["K"])
            return np.broadcast_to(np.arange(K), (n, 1, K)), np.zeros((1, 1, K))
        m, L, L_q = self.names["m_post"], self.names["L_post"], self.names["L_q"]
        # q's covariance in the posterior's whitened coordinates t = L^{-1}(z - m)
        # is A A^T = V diag(lam) V^T; along each eigenvector the narrower of
        # the two widths sets the step, the wider the half-width of the box
        A = np.linalg.solve(L, L_q)
        lam, V = np.linalg.eigh(A @ A.T)
        sd = np.sqrt(lam)
        h = np.minimum(1.0, sd) / _STEPS[level]
        axes = [
            np.arange(-c, c + hj / 2, hj)
            for c, hj in zip(_HALF_WIDTH * np.maximum(1.0, sd), h, strict=True)
        ]
        grid = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], -1)
        Z = m[:, None, None, :] + (grid @ (L @ V).T)[None, None]
        logw = np.sum(np.log(h)) + np.sum(np.log(np.abs(np.diag(L))))
        return Z, np.full((1, 1, grid.shape[0]), logw)

    def x_rule(self, level):
        raise Unsupported("an EM setting has no integral over x")

    def z_points(self):
        if "points" not in self._rules:
            if self.discrete:
                self._rules["points"] = self.z_rule(0)[0]
            else:
                m, L = self.names["m_post"], self.names["L_post"]
                t = np.linspace(-1.5, 1.5, 5)[:, None] * np.ones(self.k)
                self._rules["points"] = m[:, None, None, :] + (t @ L.T)[None, None]
        return self._rules["points"]

    def x_data(self):
        return self._x_data
