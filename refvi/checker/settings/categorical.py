"""The ``categorical`` setting: two categorical distributions in logits."""

import numpy as np
from scipy import special

from refvi import categorical
from refvi.checker.namespace import (
    Instance,
)
from refvi.checker.settings._common import (
    CLOSED,
    _numerical_grad,
)


def categorical_setting(seed, K="4"):
    """Two categorical distributions p = softmax(eta), q = softmax(eta_q).

    Logits ``eta``, ``eta_q`` (K,) with standard deviation 2, and ``eta_big``
    = ``eta`` + 1000 (the same distribution at logits of magnitude 1e3); a
    category ``k``; ``delta`` = I_K. Independent values from ``scipy.special``:
    ``p``, ``q`` (softmax) and ``ell``, ``ell_q`` (log-softmax), and the
    functions ``softmax``, ``log_softmax`` for gradients by ``grad``. The
    library's closed forms ``entropy_p`` = H[p] and ``kl`` = KL(p || q)
    (``refvi.categorical``). No latent variable.
    """
    K = int(K)
    rng = np.random.default_rng(seed)
    eta, eta_q = rng.normal(scale=2.0, size=(2, K))
    names = {
        "K": K,
        "k": int(rng.integers(K)),
        "eta": eta,
        "eta_q": eta_q,
        "eta_big": eta + 1000.0,
        "delta": np.eye(K),
        "p": special.softmax(eta),
        "q": special.softmax(eta_q),
        "ell": special.log_softmax(eta),
        "ell_q": special.log_softmax(eta_q),
        "softmax": special.softmax,
        "log_softmax": special.log_softmax,
        "grad": _numerical_grad,
        "entropy_p": np.array([categorical.entropy(eta)]),
        "kl": np.array([categorical.kl(eta, eta_q)]),
    }
    return Instance("categorical", seed, "none", names, dict(CLOSED))


#: The families q can be drawn from in the linear-Gaussian setting.
