"""Derivatives in the log-joint of a discrete latent (``ir.JointGrad``).

``\\frac{\\partial X}{\\partial \\log p(x_i, z=k)}``: the backward pass of
a mixture starts from its objectives as functions of the table c_ik = log
p(x_i, z=k). On the mixture setting the derivative of X (a value per datum:
log p(x_i), ELBO_i, KL_i) in c_ik is, for each label k, the central
difference of X with column k of the table moved for every datum at once
(each datum's X depends on its own row only), Richardson-extrapolated as
``derivatives``. The moved table defines the marginal log sum_k e^{c_ik}
and the posterior c_ik - log p(x_i); q is not moved; p(z) and p(x|z) have no
value there (moving c_ik does not say which of them moved). The result is a
value per datum and label, like a line free in z.
"""

from functools import partial

import numpy as np
from scipy.special import logsumexp

from refvi.checker.latex import ir


class JointMoved:
    """The mixture instance ``base`` with column ``k`` of its log-joint table
    moved by ``t`` (see the module); every other attribute is the base's."""

    def __init__(self, base, k, t):
        self.base, self.k, self.t = base, k, t
        joint = np.array(base.names["log_joint"](_labels(base)), dtype=np.float64)
        joint[:, k] += t
        marginal = logsumexp(joint, axis=1)
        self.tables = {"joint": joint, "post": joint - marginal[:, None]}
        self.log_px = marginal

    def __getattr__(self, name):
        return getattr(self.base, name)

    def log_density(self, kind, X, Z):
        if kind == "marginal":
            return self.log_px[:, None, None]
        if kind == "q":
            return self.base.log_density(kind, X, Z)
        if kind not in self.tables:
            raise ir.Unsupported(
                f"a derivative in log p(x_i, z=k) moves the joint only: "
                f"'{kind}' has no value there"
            )
        n, a, m = Z.shape
        Zi = np.reshape(Z, (n, a * m)).astype(int)
        return np.take_along_axis(self.tables[kind], Zi, axis=1).reshape(n, a, m)


def _labels(model):
    """Every label for every datum, (n, K)."""
    n = model.x.shape[0]
    return np.broadcast_to(np.arange(model.K), (n, model.K))


def joint_gradient(ev, node, sc):
    """(log, sign) of d body / d log p(x_i, z=k) at every datum and label,
    (n, 1, K), on the evaluator ``ev``'s mixture model."""
    from refvi.checker.latex.evaluate import _signed, real, richardson

    model = ev.model
    if not getattr(model, "discrete", False) or "log_joint" not in getattr(
        model, "names", {}
    ):
        raise ir.Unsupported(
            "a derivative in log p(x_i, z=k) needs the mixture setting's table"
        )
    n, K = model.x.shape[0], model.K

    def at(k, t):
        v = np.asarray(real(ev.fresh(JointMoved(model, k, t)).num(node.body, sc)))
        if v.size not in (1, n):
            raise ir.Unsupported(
                "a derivative in log p(x_i, z=k) of a value that is not one "
                "number per datum"
            )
        return np.broadcast_to(v.reshape(-1), (n,))

    out = np.stack([richardson(partial(at, k), ev.level) for k in range(K)], axis=1)
    return _signed(out[:, None, :])
