"""The linear VAE of refvi.inference.vae, each result by another route.

- gradients through the encoder: central differences (1e-7);
- the closed-form optimum: the pPCA maximum likelihood (Tipping & Bishop,
  ``linear_gaussian_em.ppca_mle``) reached by the ELBO to 1e-10, and a zero
  gradient there; posterior collapse exactly where sigma2 >= lambda_j;
- training from a random start reaches that optimum.
"""

import numpy as np
import pytest

from refvi.inference import vae
from refvi.inference.encoder import LinearEncoder, encode
from refvi.models import linear_gaussian as lg
from refvi.models import linear_gaussian_em as lg_em
from refvi.verify.gradcheck import assert_gradcheck

N, D, K = 5, 4, 2


def ppca_data(seed, n=2000, d=10, k=3, sigma2=0.5):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, k))
    x = rng.normal(size=(n, k)) @ W.T + rng.normal(size=d)
    return x + rng.normal(size=(n, d)) * np.sqrt(sigma2)


def random_start(seed, d, k, sigma2=1.0):
    rng = np.random.default_rng(seed)
    enc = LinearEncoder(
        rng.normal(scale=0.1, size=(k, d)), np.zeros(k), log_std=np.zeros(k)
    )
    model = lg.LinearGaussian.ppca(
        rng.normal(scale=0.1, size=(d, k)), np.zeros(d), sigma2
    )
    return enc, model


def encoder_of(form, rng):
    A, c = rng.normal(scale=0.5, size=(K, D)), rng.normal(size=K)
    if form == "diag":
        return LinearEncoder(A, c, log_std=rng.uniform(-0.5, 0.2, K))
    if form == "data":
        return LinearEncoder(
            A,
            c,
            log_std=rng.uniform(-0.5, 0.2, K),
            B=rng.normal(scale=0.2, size=(K, D)),
        )
    L = np.tril(rng.normal(scale=0.3, size=(K, K)), -1) + np.diag(
        rng.uniform(0.5, 1.0, K)
    )
    return LinearEncoder(A, c, L=L)


@pytest.mark.parametrize("form", ["diag", "data", "full"])
@pytest.mark.parametrize("estimator", ["analytic", "kl", "sampled", "iwae"])
def test_gradients_through_the_encoder_match_finite_differences(form, estimator):
    rng = np.random.default_rng(0)
    enc = encoder_of(form, rng)
    model = lg.LinearGaussian(
        rng.normal(size=(D, K)), rng.normal(size=D), rng.uniform(0.5, 1.5, D)
    )
    x, eps, dout = (
        rng.normal(size=(N, D)),
        rng.normal(size=(3, N, K)),
        rng.uniform(0.5, 1.5, N),
    )

    def f(p):
        e = LinearEncoder(**{k: p[k] for k in enc.params})
        m = lg.LinearGaussian(p["W"], p["mu"], p["psi"])
        value, grads = vae.elbo_and_grad(e, m, x, eps, estimator=estimator, dout=dout)
        return float(dout @ value), grads

    params = {**enc.params, "W": model.W, "mu": model.mu, "psi": model.psi}
    assert_gradcheck(f, params, rtol=1e-7)


def test_optimum_elbo_equals_ppca_maximum_likelihood():
    x = ppca_data(1)
    opt = vae.optimum(x, 3)
    mle = lg_em.ppca_mle(x, 3)
    log_lik_max = lg.log_marginal(mle, x).sum()
    q = encode(opt.encoder, x)
    elbo = lg.elbo(opt.model, x, q.m, log_std_q=q.log_std).sum()
    assert abs(elbo - log_lik_max) <= 1e-10 * abs(log_lik_max)
    np.testing.assert_allclose(opt.model.cov, mle.cov, rtol=1e-12, atol=1e-12)
    # the diagonal encoder is the exact posterior: KL(q || p(z|x)) = 0
    kl = lg.kl_to_posterior(opt.model, x, q.m, log_std_q=q.log_std)
    assert np.max(np.abs(kl)) < 1e-12
    assert not np.any(opt.collapsed)


@pytest.mark.parametrize("sigma2", [None, 2.0])
def test_elbo_gradient_vanishes_at_the_optimum(sigma2):
    x = ppca_data(2, n=500, d=6, k=3)
    opt = vae.optimum(x, 3, sigma2=sigma2)
    _, g = vae.elbo_and_grad(opt.encoder, opt.model, x, estimator="analytic")
    g_sigma2 = g.pop("psi").sum()  # isotropic noise: d/dsigma2 = sum_j d/dpsi_j
    scale = x.shape[0]
    for key, value in g.items():
        assert np.max(np.abs(value)) < 1e-9 * scale, key
    if sigma2 is None:
        assert abs(g_sigma2) < 1e-9 * scale


def test_optimum_is_a_maximum_under_random_perturbations():
    x = ppca_data(3, n=500, d=6, k=3)
    opt = vae.optimum(x, 3)
    rng = np.random.default_rng(4)
    best = vae.elbo_and_grad(opt.encoder, opt.model, x, estimator="analytic")[0].sum()
    for _ in range(20):
        e = {
            k: v + 1e-3 * rng.normal(size=v.shape)
            for k, v in opt.encoder.params.items()
        }
        W = opt.model.W + 1e-3 * rng.normal(size=opt.model.W.shape)
        model = lg.LinearGaussian(W, opt.model.mu, opt.model.psi)
        other = vae.elbo_and_grad(LinearEncoder(**e), model, x, estimator="analytic")[
            0
        ].sum()
        assert other < best


def test_posterior_collapse_is_predicted_where_sigma2_exceeds_an_eigenvalue():
    x = ppca_data(5, n=1000, d=6, k=3)
    lam = np.linalg.eigvalsh(np.cov(x.T, bias=True))[::-1]
    sigma2 = 0.5 * (lam[1] + lam[2])  # above lambda_3 only
    opt = vae.optimum(x, 3, sigma2=sigma2)
    np.testing.assert_array_equal(opt.collapsed, [False, False, True])
    assert np.all(opt.model.W[:, 2] == 0) and np.all(opt.encoder.A[2] == 0)
    assert opt.encoder.log_std[2] == 0  # q(z_3 | x) = N(0, 1), the prior
    # the ELBO is still tight: the encoder is the exact posterior
    q = encode(opt.encoder, x)
    kl = lg.kl_to_posterior(opt.model, x, q.m, log_std_q=q.log_std)
    assert np.max(np.abs(kl)) < 1e-12
    # training with the noise fixed at sigma2 finds the same collapse
    enc0, model0 = random_start(6, 6, 3, sigma2)
    enc, model, _ = vae.train(
        enc0,
        model0,
        x,
        np.random.default_rng(7),
        n_epochs=400,
        lr=0.03,
        estimator="analytic",
        noise="fixed",
    )
    sv = np.linalg.svd(model.W, compute_uv=False)
    np.testing.assert_allclose(sv, np.sqrt(np.maximum(lam[:3] - sigma2, 0)), atol=2e-2)
    assert sv[2] < 2e-2 < sv[1]


def test_training_trace_is_recorded_and_elbo_below_log_likelihood():
    x = ppca_data(8, n=500, d=6, k=2)
    enc0, model0 = random_start(9, 6, 2)
    _, _, trace = vae.train(
        enc0, model0, x, np.random.default_rng(10), n_epochs=30, lr=0.03, batch_size=100
    )
    assert trace.elbo.shape == trace.log_lik.shape == (31,)
    assert np.all(trace.elbo <= trace.log_lik + 1e-12)
    assert trace.elbo[-1] > trace.elbo[0] + 1.0


def test_same_seed_gives_identical_training():
    x = ppca_data(8, n=200, d=6, k=2)
    enc0, model0 = random_start(9, 6, 2)
    runs = [
        vae.train(
            enc0,
            model0,
            x,
            np.random.default_rng(3),
            n_epochs=3,
            lr=0.01,
            batch_size=50,
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0][1].W, runs[1][1].W)


def test_training_from_random_start_approaches_the_optimum_fast():
    """CI variant on the same data: analytic gradients, minibatches of 100,
    60 epochs. The gap to max log p(x) falls from about 70% to below 1%
    (relative); the slow test below runs the full criterion."""
    x = ppca_data(11)
    log_lik_max = lg.log_marginal(lg_em.ppca_mle(x, 3), x).sum()
    enc0, model0 = random_start(12, 10, 3)
    _, _, trace = vae.train(
        enc0,
        model0,
        x,
        np.random.default_rng(13),
        n_epochs=60,
        lr=0.02,
        lr_decay=0.95,
        batch_size=100,
        estimator="analytic",
    )
    elbo = trace.elbo * x.shape[0]
    assert np.all(elbo <= log_lik_max)
    assert (log_lik_max - elbo[0]) > 0.5 * abs(log_lik_max)
    assert (log_lik_max - elbo[-1]) < 1e-2 * abs(log_lik_max)


@pytest.mark.slow
def test_training_from_random_start_reaches_the_ppca_optimum():
    """n = 2000, d = 10, k = 3. Phase 1, the VAE's own training: one-sample
    reparameterization gradients (analytic KL), minibatches of 200, Adam with
    a decaying step; its ELBO comes within 1e-4 relative of max log p(x).
    The likelihood is flat in the covariance (an error e in a whitened
    direction costs about n e^2 / 4 nats: 1e-3 is 5e-4 nats here), so
    Monte Carlo noise leaves W W^T + sigma2 I about 5e-3 from the MLE;
    phase 2, full-batch analytic gradients, brings it within 1e-3 (max entry,
    relative to the largest entry)."""
    x = ppca_data(11)
    mle = lg_em.ppca_mle(x, 3)
    log_lik_max = lg.log_marginal(mle, x).sum()
    enc, model = random_start(12, 10, 3)
    rng = np.random.default_rng(13)
    enc, model, trace = vae.train(
        enc,
        model,
        x,
        rng,
        n_epochs=2500,
        lr=0.01,
        lr_decay=0.998,
        batch_size=200,
        estimator="kl",
    )
    elbo = trace.elbo[-1] * x.shape[0]
    assert 0 < (log_lik_max - elbo) < 1e-4 * abs(log_lik_max)
    enc, model, trace = vae.train(
        enc, model, x, rng, n_epochs=2000, lr=0.003, estimator="analytic"
    )
    elbo = trace.elbo[-1] * x.shape[0]
    assert 0 < (log_lik_max - elbo) < 1e-4 * abs(log_lik_max)
    assert np.max(np.abs(model.cov - mle.cov)) < 1e-3 * np.max(np.abs(mle.cov))


def test_bad_input_raises_naming_the_argument():
    rng = np.random.default_rng(0)
    enc = encoder_of("diag", rng)
    model = lg.LinearGaussian(rng.normal(size=(D, K + 1)), np.zeros(D), np.ones(D))
    x = rng.normal(size=(N, D))
    with pytest.raises(ValueError, match="encoder and model"):
        vae.elbo_and_grad(enc, model, x, rng.normal(size=(1, N, K)))
    model = lg.LinearGaussian.ppca(rng.normal(size=(D, K)), np.zeros(D), 1.0)
    with pytest.raises(ValueError, match="eps"):
        vae.elbo_and_grad(enc, model, x, rng.normal(size=(1, N + 1, K)))
    with pytest.raises(ValueError, match="lr must be positive"):
        vae.train(enc, model, x, rng, n_epochs=1, lr=0.0)
    with pytest.raises(ValueError, match="lr must be positive"):
        vae.train(enc, model, x, rng, n_epochs=1, lr=-1e-3)
    bad = x.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        vae.train(enc, model, bad, rng, n_epochs=1, lr=1e-3)
    with pytest.raises(ValueError, match="x contains NaN"):
        vae.elbo_and_grad(enc, model, bad, estimator="analytic")
    with pytest.raises(ValueError, match="estimator"):
        vae.train(enc, model, x, rng, n_epochs=1, lr=1e-3, estimator="nope")
    with pytest.raises(ValueError, match="batch_size"):
        vae.train(enc, model, x, rng, n_epochs=1, lr=1e-3, batch_size=N + 1)
    with pytest.raises(TypeError, match="rng"):
        vae.train(enc, model, x, 0, n_epochs=1, lr=1e-3)
    with pytest.raises(ValueError, match="sigma2"):
        vae.optimum(x, 2, sigma2=-1.0)
