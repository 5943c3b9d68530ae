"""50-digit mpmath evaluations of the naive formulas: the accuracy suite's oracle.

Every function here takes float64 inputs exactly as refvi receives them,
converts them exactly to 50-digit numbers, and evaluates the textbook formula
(dense covariances, LU solves, explicit sums) with no attention to rounding:
at 50 digits the cancellations that the library must avoid cost nothing.
Results come back as float64 arrays (rounded once).
"""

import mpmath
import numpy as np

DPS = 50


def mpf(a):
    """An mpmath number from a float, exactly (inf allowed)."""
    return mpmath.mpf(float(a))


def mat(a):
    a = np.atleast_2d(np.asarray(a, dtype=float))
    return mpmath.matrix([[mpf(v) for v in row] for row in a])


def vec(a):
    return mpmath.matrix([mpf(v) for v in np.ravel(a)])


def to_float(M):
    """mpmath matrix -> float64 ndarray of its shape."""
    return np.array([[float(M[i, j]) for j in range(M.cols)] for i in range(M.rows)])


def cov_from_factor(L):
    """Sigma = L L^T at 50 digits, from the float factor."""
    Lm = mat(L)
    return Lm * Lm.T


def log_normal(x, mu, Sigma):
    """log N(x; mu, Sigma) for one x: -1/2 (d log 2 pi + log det + quad)."""
    e = x - mu
    d = e.rows
    quad = (e.T * mpmath.lu_solve(Sigma, e))[0]
    return -(d * mpmath.log(2 * mpmath.pi) + mpmath.log(mpmath.det(Sigma)) + quad) / 2


def logsumexp(values):
    finite = [v for v in values if v != -mpmath.inf]
    if not finite:
        return -mpmath.inf
    top = max(finite)
    return top + mpmath.log(mpmath.fsum(mpmath.exp(v - top) for v in finite))


def log_softmax(logits):
    z = [mpf(v) for v in logits]
    lse = logsumexp(z)
    return [v - lse for v in z]


# --------------------------------------------------------------------------
# Gaussian mixture (refvi.models.mixture) at 50 digits.


def _lw(model):  # TEMPORARY: old code has no log_weights
    if hasattr(model, "log_weights"):
        return model.log_weights
    with np.errstate(divide="ignore"):
        return np.log(model.weights)


def mixture_dense(model):
    """(log_weights, means, Sigmas) of a GaussianMixture at 50 digits."""
    K, d = model.n_components, model.d
    ctype = model.covariance_type
    Sig = []
    for k in range(K):
        if ctype == "full":
            Sig.append(cov_from_factor(model.L[k]))
        elif ctype == "tied":
            Sig.append(cov_from_factor(model.L))
        elif ctype == "diag":
            Sig.append(mpmath.diag([mpf(s) ** 2 for s in model.std[k]]))
        else:
            Sig.append(mpmath.diag([mpf(model.std[k]) ** 2] * d))
    log_w = [mpf(v) for v in _lw(model)]
    return log_w, [vec(m) for m in model.means], Sig


def mixture_log_lik(model, x):
    """log N(x_i; mu_k, Sigma_k), float (n, K)."""
    with mpmath.workdps(DPS):
        _, mus, Sig = mixture_dense(model)
        return np.array(
            [
                [float(log_normal(vec(xi), mus[k], Sig[k])) for k in range(len(mus))]
                for xi in x
            ]
        )


def mixture_all(model, x, q_logits=None):
    """Everything about a mixture at data x, at 50 digits, returned as floats.

    log_joint (n, K), log_marginal (n,), log_resp (n, K), and the gradients of
    sum_i log p(x_i) w.r.t. logits, means and the scale ``L`` or ``std``
    (naive: d/dmu_k = sum_i r_ik Sigma_k^{-1} e_ik,
    d/dSigma_k = 1/2 sum_i r_ik (Sigma_k^{-1} e e^T Sigma_k^{-1} - Sigma_k^{-1}),
    chained to L by dL = 2 tril(dSigma L) for factors, 2 s dvar for stds).
    With ``q_logits`` also the ELBO (n,), its q_logits gradient and KL(q || r).
    """
    with mpmath.workdps(DPS):
        log_w, mus, Sig = mixture_dense(model)
        K = len(mus)
        Sinv = [mpmath.inverse(S) for S in Sig]
        n = x.shape[0]
        lj = [[None] * K for _ in range(n)]
        for i, xi in enumerate(x):
            xv = vec(xi)
            for k in range(K):
                lj[i][k] = log_w[k] + log_normal(xv, mus[k], Sig[k])
        lm = [logsumexp(row) for row in lj]
        lr = [[lj[i][k] - lm[i] for k in range(K)] for i in range(n)]
        r = [[mpmath.exp(v) for v in row] for row in lr]
        out = {
            "log_joint": np.array([[float(v) for v in row] for row in lj]),
            "log_marginal": np.array([float(v) for v in lm]),
            "log_resp": np.array([[float(v) for v in row] for row in lr]),
        }
        g = r
        out.update(_mixture_param_grads(model, x, mus, Sig, Sinv, log_w, g))
        if q_logits is not None:
            out.update(_mixture_q_terms(q_logits, lj, lr, model, x, mus, Sig, Sinv))
        return out


def _mixture_param_grads(model, x, mus, Sig, Sinv, log_w, g, prefix=""):
    """Gradients of sum_ik g_ik log p(x_i, z=k) (float dict)."""
    K, d = len(mus), model.d
    n = x.shape[0]
    w = [mpmath.exp(v) for v in log_w]
    G = [mpmath.fsum(g[i][k] for i in range(n)) for k in range(K)]
    Gt = mpmath.fsum(G)
    dlogits = [G[k] - w[k] * Gt for k in range(K)]
    dmeans, dSig = [], []
    for k in range(K):
        dm = mpmath.matrix(d, 1)
        dS = mpmath.matrix(d, d)
        for i in range(n):
            b = Sinv[k] * (vec(x[i]) - mus[k])
            dm += g[i][k] * b
            dS += g[i][k] * (b * b.T - Sinv[k]) / 2
        dmeans.append([float(v) for v in dm])
        dSig.append(dS)
    ctype = model.covariance_type
    if ctype == "full":
        dL = []
        for k in range(K):
            M = 2 * dSig[k] * mat(model.L[k])
            dL.append(np.tril(to_float(M)))
        dL = np.array(dL)
    elif ctype == "tied":
        tot = mpmath.matrix(d, d)
        for k in range(K):
            tot += dSig[k]
        dL = np.tril(to_float(2 * tot * mat(model.L)))
    elif ctype == "diag":
        dL = np.array(
            [
                [float(2 * mpf(model.std[k][j]) * dSig[k][j, j]) for j in range(d)]
                for k in range(K)
            ]
        )
    else:
        dL = np.array(
            [
                float(
                    2 * mpf(model.std[k]) * mpmath.fsum(dSig[k][j, j] for j in range(d))
                )
                for k in range(K)
            ]
        )
    return {
        prefix + "logits": np.array([float(v) for v in dlogits]),
        prefix + "means": np.array(dmeans),
        prefix + ("L" if ctype in ("full", "tied") else "std"): dL,
    }


def _mixture_q_terms(q_logits, lj, lr, model, x, mus, Sig, Sinv):
    """ELBO_i = sum_k q_ik (log p(x_i, z=k) - log q_ik), KL(q_i || r_i), grads."""
    n, K = len(lj), len(lj[0])
    elbo, kl, dq = [], [], []
    lq_all, q_all = [], []
    for i in range(n):
        lq = log_softmax(q_logits[i])
        q = [mpmath.exp(v) for v in lq]
        lq_all.append(lq)
        q_all.append(q)
        terms = [
            q[k] * (lj[i][k] - lq[k]) if q[k] != 0 else mpmath.mpf(0) for k in range(K)
        ]
        e = mpmath.fsum(terms)
        elbo.append(e)
        kl.append(
            mpmath.fsum(
                q[k] * (lq[k] - lr[i][k]) if q[k] != 0 else mpmath.mpf(0)
                for k in range(K)
            )
        )
        # d ELBO_i / d q_logits_ik = q_ik (f_ik - ELBO_i), f = log p(x, k) - log q
        dq.append(
            [
                q[k] * (lj[i][k] - lq[k] - e) if q[k] != 0 else mpmath.mpf(0)
                for k in range(K)
            ]
        )
    out = {
        "elbo": np.array([float(v) for v in elbo]),
        "kl": np.array([float(v) for v in kl]),
        "elbo_q_logits": np.array([[float(v) for v in row] for row in dq]),
    }
    log_w = [mpf(v) for v in _lw(model)]
    grads = _mixture_param_grads(model, x, mus, Sig, Sinv, log_w, q_all, "elbo_")
    out.update(grads)
    return out


# --------------------------------------------------------------------------
# Linear-Gaussian model (refvi.models.linear_gaussian) at 50 digits.


def lg_cov(model):
    W = mat(model.W)
    return W * W.T + mpmath.diag([mpf(p) for p in model.psi])


def lg_log_marginal_and_grad(model, x, dout=None):
    """log N(x_i; mu, C) and the gradients of sum_i dout_i log p(x_i), naive:

    b_i = C^{-1}(x_i - mu), dmu = sum dout_i b_i,
    dC = 1/2 sum dout_i (b_i b_i^T - C^{-1}), dW = 2 dC W, dpsi = diag(dC).
    """
    n, d = x.shape
    dout = np.ones(n) if dout is None else dout
    with mpmath.workdps(DPS):
        C = lg_cov(model)
        Ci = mpmath.inverse(C)
        mu = vec(model.mu)
        vals = []
        dmu = mpmath.matrix(d, 1)
        dC = mpmath.matrix(d, d)
        for i in range(n):
            e = vec(x[i]) - mu
            vals.append(float(log_normal(vec(x[i]), mu, C)))
            b = Ci * e
            dmu += mpf(dout[i]) * b
            dC += mpf(dout[i]) * (b * b.T - Ci) / 2
        dW = 2 * dC * mat(model.W)
        return np.array(vals), {
            "W": to_float(dW),
            "mu": np.array([float(v) for v in dmu]),
            "psi": np.array([float(dC[j, j]) for j in range(d)]),
        }


def lg_log_marginal_total(model, stats):
    """-n/2 [d log 2 pi + log det C + tr(C^{-1} Sigma_hat) + delta^T C^{-1} delta]."""
    with mpmath.workdps(DPS):
        C = lg_cov(model)
        d = C.rows
        S = mat(stats.Sigma_hat)
        delta = vec(stats.xbar) - vec(model.mu)
        CiS = mpmath.inverse(C) * S
        tr = mpmath.fsum(CiS[j, j] for j in range(d))
        quad = (delta.T * mpmath.lu_solve(C, delta))[0]
        val = (
            -mpf(stats.n)
            / 2
            * (d * mpmath.log(2 * mpmath.pi) + mpmath.log(mpmath.det(C)) + tr + quad)
        )
        return float(val)


def rel_err(a, ref):
    """Normwise relative error max|a - ref| / max|ref| (equal infinities count 0).

    A NaN anywhere, or an infinity in one array but not the other, is an
    infinite error. An all-zero reference gives the absolute error.
    """
    a = np.asarray(a, dtype=float)
    ref = np.asarray(ref, dtype=float)
    if a.shape != ref.shape:
        raise AssertionError(f"shape {a.shape} != reference shape {ref.shape}")
    if np.any(np.isnan(a)) or np.any(np.isnan(ref)):
        return np.inf
    same_inf = np.isinf(ref) & (a == ref)
    if np.any(np.isinf(a) & ~same_inf) or np.any(np.isinf(ref) & ~same_inf):
        return np.inf
    a, ref = a[~same_inf], ref[~same_inf]
    if a.size == 0:
        return 0.0
    scale = np.max(np.abs(ref))
    diff = np.max(np.abs(a - ref))
    return float(diff / scale) if scale > 0 else float(diff)


EPS = float(np.finfo(float).eps)


def perturbation_condition(f, args, rng, trials=3):
    """Empirical condition number of ``f`` at ``args``, in units of eps.

    ``f(*args)`` returns a float array or a dict of them (evaluated at 50
    digits by the caller's reference). Each float input entry is multiplied
    by (1 + eps u), u uniform in [-1, 1] (the rounding any float64 input
    already carries); the condition number is the largest normwise relative
    change of any output over ``trials`` such perturbations, divided by eps.
    A backward-stable algorithm can be off by about this many eps.
    """
    base = f(*args)
    base = base if isinstance(base, dict) else {"value": base}
    worst = {name: 0.0 for name in base}
    for _ in range(trials):
        pert = [
            a * (1 + EPS * rng.uniform(-1, 1, size=np.shape(a)))
            if isinstance(a, np.ndarray)
            else a
            for a in args
        ]
        out = f(*pert)
        out = out if isinstance(out, dict) else {"value": out}
        for name in base:
            worst[name] = max(worst[name], rel_err(out[name], base[name]) / EPS)
    return worst


def lg_total_condition(model, stats):
    """Condition number (units of eps) of LG.19 w.r.t. Sigma_hat's entries:
    n/2 sum_ij |(C^{-1})_ij Sigma_hat_ij| / |value| (the rounding of Sigma_hat
    alone moves the value by up to this many eps)."""
    with mpmath.workdps(DPS):
        Ci = mpmath.inverse(lg_cov(model))
        S = mat(stats.Sigma_hat)
        d = S.rows
        tot = mpmath.fsum(abs(Ci[i, j] * S[i, j]) for i in range(d) for j in range(d))
        return float(
            mpf(stats.n) / 2 * tot / abs(mpf(lg_log_marginal_total(model, stats)))
        )
