"""The seed text's derivation is covered line by line, and each of its wrong
lines, transcribed as written, is rejected by the checker at that line.

The seed is a blog-style derivation of the ELBO ("Variational encoding"; a
copy is tests/checker/latex_corpus/seed_variational_encoding.md); its
displayed lines are transcribed here.
"""

from pathlib import Path

import pytest

from refvi.checker.derivation import parse, verify

DERIVATIONS = Path(__file__).resolve().parents[2] / "derivations"

#: The seed's displayed lines of "One way to think about it", in order.
SEED_LINES = [
    r"D_{KL}(q_{\phi}(z|x) \| p_{\theta}(z|x))",
    r"D_{KL}(q_{\phi}(z|x) \| p_{\theta}(z|x)) = \int q_{\phi}(z) \log "
    r"\frac{q_{\phi}(z)}{p_{\theta}(z|x)} dz",
    r"D_{KL}(q_{\phi}(z|x) \| p_{\theta}(z|x))= \int q_{\phi}(z) \log "
    r"\frac{q_{\phi}(z)}{p_{\theta}(x,z)} p_{\theta}(x) dz",
    r"D_{KL}(q_{\phi}(z|x) \| p_{\theta}(z|x))= \log p_{\theta}(x) + "
    r"\mathbb{E}_{q_{\phi}}\left[\log \frac{q_{\phi}(z)}{p_{\theta}(x,z)}\right]",
    r"D_{KL}(q_{\phi}(z|x) \| p_{\theta}(z|x))= \log p_{\theta}(x) + \int "
    r"q_{\phi}(z) \log \frac{q_{\phi}(z)}{p_{\theta}(x)p_{\theta}(z)} dz",
    r"D_{KL}(q_{\phi}(z|x) \| p_{\theta}(z|x))= \log p_{\theta}(x) - "
    r"\mathbb{E}_{q_{\phi}}\left[\log \frac{p_{\theta}(x,z)}{q_{\phi}(z)}\right]",
    r"D_{KL}(q_{\phi}(z|x) \| p_{\theta}(z|x))= \log p_{\theta}(x) - "
    r"F_{\theta}(q_{\phi})",
    r"F_{\theta}(q_{\phi}) = \log p_{\theta}(x) - "
    r"D_{KL}(q_{\phi}(z|x) \| p_{\theta}(z|x))",
]

#: Seed line index -> (the corrected check's expression, the seed's as written).
WRONG_SEED_LINES = {
    2: (
        "= integral(exp(log_q) * (log_q + log_px - log_joint))",
        "= exp(log_px) * integral(exp(log_q) * (log_q - log_joint))",
    ),
    4: (
        "= log_px + integral(exp(log_q) * (log_q - log_lik - log_prior))",
        "= log_px + integral(exp(log_q) * (log_q - log_px - log_prior))",
    ),
}


def normalise(latex):
    """LaTeX without spacing, with the seed's q(z) read as q(z|x)."""
    flat = latex.replace(r"q_{\phi}(z)", r"q_{\phi}(z|x)")
    for space in (r"\,", r"\;", " "):
        flat = flat.replace(space, "")
    return flat


def elbo_identity():
    text = (DERIVATIONS / "elbo_identity.md").read_text()
    return text, parse(text, "derivations/elbo_identity.md")


def test_every_seed_line_appears_in_order_corrected_where_wrong():
    _, derivation = elbo_identity()
    shown = [normalise(c.latex) for c in derivation.checks]
    positions = []
    for i, line in enumerate(SEED_LINES):
        if i in WRONG_SEED_LINES:
            assert normalise(line) not in shown, f"seed line {i} is wrong, not shown"
            continue
        assert normalise(line) in shown, f"seed line {i} missing: {line}"
        positions.append(shown.index(normalise(line)))
    assert positions == sorted(positions)
    # the corrected lines sit where the seed's wrong lines were
    for i, (right, _) in WRONG_SEED_LINES.items():
        at = next(
            k for k, c in enumerate(derivation.checks) if c.sides[0].source == right[2:]
        )
        before = shown.index(normalise(SEED_LINES[i - 1]))
        after = shown.index(normalise(SEED_LINES[i + 1]))
        assert before < at < after


def test_elbo_identity_holds_line_by_line():
    _, derivation = elbo_identity()
    result = verify(derivation, seeds=2)
    assert result.ok and result.unchecked == 0
    assert [s.name for s in derivation.settings] == [
        "linear_gaussian",
        "mixture",
        "mixture_prior",
    ]


@pytest.mark.parametrize("index", sorted(WRONG_SEED_LINES))
def test_seed_line_as_written_is_rejected_at_that_line(index):
    text, derivation = elbo_identity()
    right, as_written = WRONG_SEED_LINES[index]
    assert text.count(right) == 1
    seeded = parse(text.replace(right, as_written), "seeded.md")
    result = verify(seeded, seeds=2)
    line = next(c.line for c in seeded.checks if c.sides[0].source == as_written[2:])
    assert [r.line for r in result.lines if not r.holds] == [line]
    assert next(r for r in result.lines if r.line == line).deviation > 1e-3


def test_seed_aggregated_line_as_written_is_rejected():
    """The seed's q(z) = int q(z|x) p(x) dx != int p(z|x) p(x) dx = p(z) with
    p(x) the data distribution: the last equality fails."""
    text = (DERIVATIONS / "aggregated_posterior.md").read_text()
    right = (
        "E_model(lambda x: exp(log_enc(z, x)))\n"
        "!= E_model(lambda x: exp(log_post(z, x)))\n"
        "= exp(log_prior(z))"
    )
    assert text.count(right) == 1
    as_written = right.replace("E_model", "E_data")
    seeded = parse(text.replace(right, as_written), "seeded.md")
    result = verify(seeded, seeds=2)
    line = next(
        c.line
        for c in seeded.checks
        if c.sides and c.sides[0].source.startswith("E_data(lambda x: exp(log_enc")
    )
    assert [r.line for r in result.lines if not r.holds] == [line]


def test_seed_implication_fails_on_the_counterexamples():
    """The seed's "q(z|x) != p(z|x) for some x  =>  q(z) != p(z)": the collapsed
    and mirrored encoders differ from the posterior, yet aggregate to p(z)."""
    text = (DERIVATIONS / "aggregated_posterior.md").read_text()
    for encoder in ("log_enc_prior", "log_enc_flip"):
        claim = f"E_model(lambda x: exp({encoder}(z, x)))\n= exp(log_prior(z))"
        assert text.count(claim) == 1
        # the seed's conclusion q(z) != p(z), written as a check, fails there
        seeded = parse(text.replace(claim, claim.replace("\n=", "\n!=")), "s.md")
        bad = [r.line for r in verify(seeded, seeds=2).lines if not r.holds]
        assert len(bad) == 1
