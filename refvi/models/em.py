"""The EM loop shared by every model: coordinate ascent on the ELBO F(q, theta).

Each iteration t of EM does two steps (derivations/em.md):

- E-step: q_t = p(z | x; theta_t), so F(q_t, theta_t) = log p(x; theta_t);
- M-step: theta_{t+1} = argmax_theta F(q_t, theta), so F can only go up, and
  log p(x; theta_{t+1}) = F(q_t, theta_{t+1}) + KL(q_t || p(z|x; theta_{t+1}))
  >= F(q_t, theta_{t+1}) >= F(q_t, theta_t) = log p(x; theta_t).

The driver records every term of that chain so a caller (or a test) can see
that it holds, and it reports a decrease of the log-likelihood instead of
taking it for convergence.
"""

import warnings
from dataclasses import dataclass

import numpy as np

from refvi._validate import check_callable, check_float, check_int

#: Default largest number of EM iterations, the same for every model.
DEFAULT_MAX_ITER = 1000

#: Default tolerance on the increase of log p(x) / n per iteration, for every model.
DEFAULT_TOL = 1e-10

__all__ = [
    "DEFAULT_MAX_ITER",
    "DEFAULT_TOL",
    "DECREASE_EPS",
    "EMDecreaseWarning",
    "EMTrace",
    "run_em",
]

#: A log-likelihood step counts as a decrease when it goes down by more than
#: this many machine epsilons relative to |log p(x)| (about 9e-13): rounding in
#: the sums over the data cannot explain a larger drop.
DECREASE_EPS = 4096


class EMDecreaseWarning(UserWarning):
    """EM lowered the log-likelihood by more than rounding can explain."""


@dataclass(frozen=True)
class EMTrace:
    """What happened in each EM iteration; all values are totals over the data.

    Attributes
    ----------
    log_lik : ndarray, shape (T + 1,)
        log p(x; theta_t) for t = 0..T (the initial and every updated model).
    elbo_e : ndarray, shape (T,)
        F(q_t, theta_t) after the E-step of iteration t (equals ``log_lik[t]``
        when the E-step is exact).
    elbo_m : ndarray, shape (T,)
        F(q_t, theta_{t+1}) after the M-step of iteration t.
    kl_gap : ndarray, shape (T,)
        ``log_lik[t + 1] - elbo_m[t]`` = KL(q_t || p(z | x; theta_{t+1})) >= 0.
    decreased : ndarray of bool, shape (T,)
        Whether ``log_lik[t + 1]`` fell below ``log_lik[t]`` by more than
        ``DECREASE_EPS`` machine epsilons relative.
    converged : bool
        Whether the last step raised the mean log-likelihood per datum by at
        least 0 and at most ``tol`` (a decrease never counts as convergence).
    n_iter : int
        T, the number of iterations run.
    """

    log_lik: np.ndarray
    elbo_e: np.ndarray
    elbo_m: np.ndarray
    kl_gap: np.ndarray
    decreased: np.ndarray
    converged: bool
    n_iter: int


def run_em(
    model, *, e_step, m_step, elbo, n, tol=DEFAULT_TOL, max_iter=DEFAULT_MAX_ITER
):
    """Run EM from ``model`` until convergence or ``max_iter`` iterations.

    Parameters
    ----------
    model : object
        The initial parameters theta_0.
    e_step : callable
        ``e_step(model) -> (post, log_lik)``: the posterior q = p(z | x; model)
        (or its sufficient statistics) and log p(x; model) summed over the
        data, which the same pass over the data gives. It is called once per
        model: for theta_0 and after every M-step.
    m_step : callable
        ``m_step(post) -> model``: argmax_theta F(post, theta).
    elbo : callable
        ``elbo(model, post) -> float``: F(post, model) summed over the data.
    n : int
        Number of data points; ``tol`` applies to the mean per datum.
    tol : float
        Stop when an iteration raises log p(x) / n by no more than ``tol``.
    max_iter : int
        Upper bound on the number of iterations.

    Returns
    -------
    model : object
        theta_T, the last model.
    trace : EMTrace
        Every term of the EM chain, per iteration.

    Raises
    ------
    ValueError
        When ``e_step`` gives a NaN or infinite log-likelihood, or ``elbo`` a
        non-finite ELBO, naming the function and the iteration (EM cannot
        converge from there, and would otherwise run silently to ``max_iter``).

    Warns
    -----
    EMDecreaseWarning
        When an iteration lowers the log-likelihood by more than rounding can
        explain; the iteration is flagged in ``trace.decreased`` and EM goes on.
    """
    for f, name in ((e_step, "e_step"), (m_step, "m_step"), (elbo, "elbo")):
        check_callable(f, name)
    n = check_int(n, "n", minimum=1)
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    tol = check_float(tol, "tol", minimum=0.0)

    post, log_lik = e_step(model)
    log_liks = [_finite(log_lik, "e_step", "log-likelihood", 0)]
    elbo_e, elbo_m, decreased = [], [], []
    converged = False
    for t in range(1, max_iter + 1):
        elbo_e.append(_finite(elbo(model, post), "elbo", "ELBO", t))
        model = m_step(post)
        elbo_m.append(_finite(elbo(model, post), "elbo", "ELBO", t))
        post, log_lik = e_step(model)
        log_liks.append(_finite(log_lik, "e_step", "log-likelihood", t))
        step = log_liks[-1] - log_liks[-2]
        went_down = step < -DECREASE_EPS * np.finfo(float).eps * abs(log_liks[-2])
        decreased.append(went_down)
        if went_down:
            warnings.warn(
                f"EM iteration {len(decreased)} lowered log p(x) from "
                f"{log_liks[-2]!r} to {log_liks[-1]!r}",
                EMDecreaseWarning,
                stacklevel=2,
            )
        elif step <= tol * n:
            converged = True
            break

    log_lik_arr = np.array(log_liks)
    elbo_m_arr = np.array(elbo_m)
    return model, EMTrace(
        log_lik=log_lik_arr,
        elbo_e=np.array(elbo_e),
        elbo_m=elbo_m_arr,
        kl_gap=log_lik_arr[1:] - elbo_m_arr,
        decreased=np.array(decreased, dtype=bool),
        converged=converged,
        n_iter=len(elbo_m),
    )


def _finite(value, source, what, t):
    """``value`` as a float, or ValueError naming ``source`` when it is not finite."""
    value = float(value)
    if not np.isfinite(value):
        model = (
            "the initial model" if t == 0 else f"the model m_step gave in iteration {t}"
        )
        raise ValueError(
            f"{source} gave the {what} {value!r} for {model}; EM cannot go on "
            "from a non-finite value"
        )
    return value
