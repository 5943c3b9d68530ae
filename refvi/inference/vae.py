"""The linear VAE: a linear Gaussian encoder and a linear-Gaussian decoder.

Encoder q_phi(z | x) = N(A x + c, Sigma_q) (``encoder.LinearEncoder``),
decoder z ~ N(0, I_k), x | z ~ N(W z + mu, diag(psi))
(``refvi.models.linear_gaussian.LinearGaussian``). :func:`elbo_and_grad`
chains an estimator of ``refvi.inference.estimators`` with the encoder's
backward pass; :func:`train` runs minibatch SGD or Adam on it with an explicit
rng; :func:`optimum` is the closed-form optimum of Lucas et al. (2019), "Don't
Blame the ELBO", built from the pPCA solution of Tipping & Bishop (1999).
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import eigh

from refvi._validate import (
    as_data,
    as_float_array,
    check_dout,
    check_int,
    check_positive,
    check_rng,
)
from refvi.inference.encoder import (
    LinearEncoder,
    _encode,
    _encode_backward,
    check_encoder,
)
from refvi.inference.estimators import KERNELS, elbo_analytic_and_grad
from refvi.models import linear_gaussian as lg
from refvi.models.linear_gaussian_em import log_marginal_total, sufficient_stats

__all__ = [
    "check_pair",
    "elbo_and_grad",
    "Optimum",
    "optimum",
    "TrainTrace",
    "train",
    "NOISE_MODELS",
    "OPTIMIZERS",
]


NOISE_MODELS = ("isotropic", "diag", "fixed")
OPTIMIZERS = ("sgd", "adam")


def check_pair(encoder, model):
    """Check that ``encoder`` and ``model`` fit together (same k and d)."""
    check_encoder(encoder)
    if not isinstance(model, lg.LinearGaussian):
        raise TypeError(f"model must be a LinearGaussian; got {type(model).__name__}")
    if (encoder.k, encoder.d) != (model.k, model.d):
        raise ValueError(
            "encoder and model must have the same latent and data dimensions; got "
            f"encoder (k, d) = ({encoder.k}, {encoder.d}), "
            f"model (k, d) = ({model.k}, {model.d})"
        )


def elbo_and_grad(encoder, model, x, eps=None, *, estimator="kl", dout=None):
    """Estimate of ELBO_i for q_i = encoder(x_i) and the gradients w.r.t. phi and theta.

    Parameters
    ----------
    encoder : LinearEncoder
    model : LinearGaussian
    x : array_like, shape (n, d)
    eps : array_like, shape (S, n, k)
        Noise for the stochastic estimators (ignored by ``"analytic"``).
    estimator : str
        One of ``estimators.KERNELS``: ``"analytic"``, ``"kl"``, ``"entropy"``,
        ``"sampled"``, ``"path"``, ``"score"``, ``"iwae"`` (see
        ``refvi.inference.estimators``).
    dout : array_like, shape (n,), optional

    Returns
    -------
    value : ndarray, shape (n,)
    grads : dict
        Encoder ``A, c`` and ``log_std`` [``B``] or ``L``; decoder ``W, mu, psi``.
    """
    check_pair(encoder, model)
    if estimator not in KERNELS:
        raise ValueError(
            f"estimator must be one of {tuple(KERNELS)}; got {estimator!r}"
        )
    x = as_data(x, model.d)
    if estimator != "analytic":
        eps = as_float_array(eps, "eps", ndim=3, shape=(None, x.shape[0], model.k))
    dout = check_dout(dout, x.shape[0])
    return _elbo_and_grad(encoder, model, x, eps, estimator, dout)


def _elbo_and_grad(encoder, model, x, eps, estimator, dout):
    """:func:`elbo_and_grad` on checked arguments."""
    q = _encode(encoder, x)
    value, g = KERNELS[estimator](model, x, q, eps, dout)
    grads = _encode_backward(encoder, x, g)
    grads.update(W=g["W"], mu=g["mu"], psi=g["psi"])
    return value, grads


# ---------------------------------------------------------------------------
# The closed-form optimum.


class Optimum(NamedTuple):
    """The linear VAE's global optimum (Lucas et al. 2019, Tipping & Bishop 1999).

    Attributes
    ----------
    encoder : LinearEncoder
        Diagonal encoder equal to the exact posterior of ``model``.
    model : LinearGaussian
        pPCA decoder W = U_k (Lambda_k - sigma2 I)_+^{1/2}, mu = xbar.
    collapsed : ndarray of bool, shape (k,)
        lambda_j <= sigma2: decoder column j is 0 and q(z_j | x) = N(0, 1).
    eigenvalues : ndarray, shape (d,)
        Eigenvalues of the sample covariance, in decreasing order.
    """

    encoder: LinearEncoder
    model: lg.LinearGaussian
    collapsed: np.ndarray
    eigenvalues: np.ndarray


def optimum(x, k, *, sigma2=None):
    """Closed-form maximiser of the linear VAE's ELBO, where the ELBO is tight.

    Implements derivations/linear_vae.md (LV.1)-(LV.6).

    With lambda_1 >= ... >= lambda_d and U the eigen-decomposition of the
    sample covariance (Tipping & Bishop 1999; Lucas et al. 2019, Thm. 1):

        sigma2 = mean(lambda_{k+1}, ..., lambda_d)      (unless given),
        W = U_k diag(max(lambda_j - sigma2, 0))^{1/2},  mu = xbar,

    and the encoder is the exact posterior, diagonal because W^T W is:
    S = (I + W^T W / sigma2)^{-1} = diag(sigma2 / max(lambda_j, sigma2)),
    A = S W^T / sigma2, c = -A xbar. A fixed ``sigma2`` above lambda_j
    collapses direction j (posterior collapse): W_j = 0, A_j = 0, S_jj = 1.
    """
    x = as_data(x)
    k = check_int(k, "k", minimum=1)
    if k >= x.shape[1]:
        raise ValueError(f"k must be < d = {x.shape[1]}; got {k}")
    stats = sufficient_stats(x)
    lam, U = eigh(stats.Sigma_hat)
    lam, U = lam[::-1], U[:, ::-1]
    if sigma2 is None:
        sigma2 = float(np.mean(lam[k:]))
    sigma2 = float(check_positive(sigma2, "sigma2", shape=()))
    collapsed = lam[:k] <= sigma2
    W = U[:, :k] * np.sqrt(np.maximum(lam[:k] - sigma2, 0.0))
    model = lg.LinearGaussian.ppca(W, stats.xbar, sigma2)
    s2 = sigma2 / np.maximum(lam[:k], sigma2)  # diag of S
    A = (s2 / sigma2)[:, None] * W.T
    encoder = LinearEncoder(A, -A @ stats.xbar, log_std=0.5 * np.log(s2))
    return Optimum(encoder, model, collapsed, lam)


# ---------------------------------------------------------------------------
# Training.


@dataclass(frozen=True)
class TrainTrace:
    """Per-epoch record of :func:`train`; entry 0 is the starting point.

    Attributes
    ----------
    elbo : ndarray, shape (n_epochs + 1,)
        Closed-form ELBO per datum, averaged over the data.
    log_lik : ndarray, shape (n_epochs + 1,)
        Exact log p(x) per datum under the decoder, averaged over the data.
    """

    elbo: np.ndarray
    log_lik: np.ndarray


def _to_vector(encoder, model, noise):
    """The optimised parameters: the encoder's, W, mu and the log noise."""
    params = dict(encoder.params)
    params.update(W=model.W, mu=model.mu)
    if noise == "isotropic":
        params["log_sigma2"] = np.array(np.log(model.psi[0]))
    elif noise == "diag":
        params["log_psi"] = np.log(model.psi)
    return {name: np.array(value) for name, value in params.items()}


def _from_vector(params, psi_fixed):
    enc = {n: params[n] for n in ("A", "c", "log_std", "B") if n in params}
    if "log_sigma2" in params:
        psi = np.full(params["W"].shape[0], np.exp(params["log_sigma2"]))
    elif "log_psi" in params:
        psi = np.exp(params["log_psi"])
    else:
        psi = psi_fixed
    return LinearEncoder(**enc), lg.LinearGaussian(params["W"], params["mu"], psi)


def _chain_noise(grads, model, noise):
    """d/dlog sigma2 = sigma2 sum_j d/dpsi_j; d/dlog psi = psi d/dpsi."""
    grads = dict(grads)
    dpsi = grads.pop("psi")
    if noise == "isotropic":
        grads["log_sigma2"] = np.array(model.psi[0] * dpsi.sum())
    elif noise == "diag":
        grads["log_psi"] = model.psi * dpsi
    return grads


def _trace_point(encoder, model, x, stats):
    q = _encode(encoder, x)
    elbo = elbo_analytic_and_grad(model, x, q)[0]
    return float(elbo.mean()), log_marginal_total(model, stats) / stats.n


def train(
    encoder,
    model,
    x,
    rng,
    *,
    n_epochs,
    lr,
    batch_size=None,
    optimizer="adam",
    estimator="kl",
    n_samples=1,
    noise="isotropic",
    lr_decay=1.0,
    betas=(0.9, 0.999),
    adam_eps=1e-8,
):
    """Maximise the mean ELBO over the data by minibatch SGD or Adam.

    Each epoch visits the data in an order drawn from ``rng``; each minibatch
    step draws eps (n_samples, batch, k) from ``rng``, takes the estimator's
    gradient of the minibatch mean ELBO (:func:`elbo_and_grad`) and ascends:

        sgd:  p <- p + lr g
        adam: m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,
              p <- p + lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + adam_eps)

    with lr multiplied by ``lr_decay`` after every epoch.
    The noise is optimised as log sigma2 (``"isotropic"``, pPCA), log psi
    (``"diag"``, factor analysis) or kept (``"fixed"``). Only diagonal
    encoders are trained (a Cholesky factor's diagonal could turn negative).

    Returns
    -------
    encoder : LinearEncoder
    model : LinearGaussian
    trace : TrainTrace
    """
    check_pair(encoder, model)
    x = as_data(x, model.d)
    rng = check_rng(rng)
    n = x.shape[0]
    n_epochs = check_int(n_epochs, "n_epochs", minimum=1)
    lr = float(check_positive(lr, "lr", shape=()))
    batch_size = n if batch_size is None else check_int(batch_size, "batch_size", 1)
    if batch_size > n:
        raise ValueError(f"batch_size must be <= n = {n}; got {batch_size}")
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    for name, value, allowed in (
        ("optimizer", optimizer, OPTIMIZERS),
        ("estimator", estimator, tuple(KERNELS)),
        ("noise", noise, NOISE_MODELS),
    ):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    if encoder.L is not None:
        raise ValueError("encoder must be diagonal (log_std) for training; got L")
    if noise == "isotropic" and np.ptp(model.psi) != 0:
        raise ValueError("model.psi must be isotropic for noise='isotropic'")
    lr_decay = float(check_positive(lr_decay, "lr_decay", shape=()))
    b1, b2 = (float(b) for b in betas)

    stats = sufficient_stats(x)
    params = _to_vector(encoder, model, noise)
    m1 = {name: np.zeros_like(p) for name, p in params.items()}
    m2 = {name: np.zeros_like(p) for name, p in params.items()}
    t = 0
    elbos, log_liks = [], []
    for epoch in range(n_epochs + 1):
        enc, mod = _from_vector(params, model.psi)
        elbo, log_lik = _trace_point(enc, mod, x, stats)
        elbos.append(elbo)
        log_liks.append(log_lik)
        if epoch == n_epochs:
            break
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            xb = x[order[start : start + batch_size]]
            eps = rng.standard_normal((n_samples, batch_size, model.k))
            dout = np.full(batch_size, 1.0 / batch_size)
            _, grads = _elbo_and_grad(enc, mod, xb, eps, estimator, dout)
            grads = _chain_noise(grads, mod, noise)
            t += 1
            for name, g in grads.items():
                if optimizer == "sgd":
                    params[name] = params[name] + lr * g
                    continue
                m1[name] = b1 * m1[name] + (1 - b1) * g
                m2[name] = b2 * m2[name] + (1 - b2) * g * g
                step = (m1[name] / (1 - b1**t)) / (
                    np.sqrt(m2[name] / (1 - b2**t)) + adam_eps
                )
                params[name] = params[name] + lr * step
            enc, mod = _from_vector(params, model.psi)
        lr *= lr_decay
    return enc, mod, TrainTrace(np.array(elbos), np.array(log_liks))
