"""The base noise of the reparameterization and the latent written through it.

With ``z = m + \\sigma \\odot \\varepsilon`` a derivation writes an expectation
under q as one under the fixed noise distribution. Read here:

- the noise's measure as an expectation's subscript: ``\\mathbb{E}_{\\varepsilon}``,
  ``\\mathbb{E}_{p(\\varepsilon)}``, ``\\mathbb{E}_{\\varepsilon \\sim
  \\mathcal{N}(0, I)}`` (also ``I_k``, ``1``; ``\\epsilon`` alike): epsilon ~
  N(0, I_k), integrated by the Gauss-Hermite rule of
  ``evaluate._noise_expectation``;
- the reparameterized latent as a density's argument: ``p(x, m + \\sigma \\odot
  \\varepsilon)``, ``q(\\mu + \\sigma \\varepsilon | x)``, ``p(x | z(\\varepsilon))``,
  ``q(z_\\varepsilon | x)``: the density at z = m + L epsilon, q's mean plus
  its scale times the bound noise (``ir.Reparam``; ``m``/``\\mu`` and
  ``\\sigma`` are q's mean and standard deviation, so that spelling needs a
  diagonal q). The result is ``ir.AtNoise``;
- draws written with a sample index: ``z_s = m + \\sigma \\odot \\varepsilon_s``
  (``z_1``, ``z_{s}``; in a display or anywhere in the prose) links the
  latent with a sample index to the noise with that index (``LINK``, a
  definition); after it ``p(x, z_1)`` is the density at the reparameterized
  latent of ``\\varepsilon_1``. A noise with a sample index that no
  expectation binds (``\\hat F_A(\\varepsilon_1)``) is a given draw: such a
  line is checked pointwise at DRAWS fixed draws of the noise (the same on
  both sides and on every run, ``drawn``);
- a Monte Carlo average over draws of the noise, ``\\frac{1}{S}
  \\sum_{s=1}^{S} \\hat F_A(\\varepsilon_s)``, a whole side of ``\\approx``:
  the mean over MC draws of the noise (the instance's own stream [seed, 10],
  the same draws on every run) with its standard error (``average_var``,
  ``mc_draws``), judged as any Monte Carlo side is.
"""

import numpy as np

from refvi.checker.latex import ir

#: The key under which the link z_s = m + sigma * eps_s is a definition.
LINK = "z_s"
#: Fixed draws of the noise at which a line with a given draw is checked.
DRAWS = 8

#: The noise's symbols (``\\epsilon``, ``\\varepsilon``).
NOISE_TOKENS = ("\\epsilon", "\\varepsilon")

#: Symbols read as the noise only where an expectation's subscript declares
#: them standard normal (``\\xi \\sim \\mathcal{N}(0, I)``, ``integrands``).
DECLARED_NOISE = ("\\xi",)

#: Spellings of the standard normal after ``\\varepsilon \\sim``.
_STANDARD = {"mathcal:N(0,I)", "mathcal:N(0,I_k)", "mathcal:N(0,I_{k})",
             "mathcal:N(0,1)", "p(\\epsilon)", "p(\\varepsilon)"}  # fmt: skip


def noise_measure(sub):
    """(measure, variable) of an expectation's subscript that names the noise
    (``\\varepsilon``, ``\\varepsilon \\sim \\mathcal{N}(0, I)``; ``\\xi``
    only so declared, ``integrands``), else None."""
    texts = [t.text for t in sub]
    declared = texts[:1] in [[n] for n in DECLARED_NOISE] and texts[1:2] == ["\\sim"]
    if declared and "".join(texts[2:]) in _STANDARD:
        return ir.Density("p", (ir.NOISE,), ()), ir.NOISE
    if not texts or texts[0] not in NOISE_TOKENS:
        return None
    if len(texts) == 1 or (
        len(texts) > 2 and texts[1] == "\\sim" and "".join(texts[2:]) in _STANDARD
    ):
        return ir.Density("p", (ir.NOISE,), ()), ir.NOISE
    return None


def reparam_at(parser):
    """(token count, ``ir.Reparam``) of a reparameterized latent at the
    parser's position (see the module), or (0, None)."""
    texts = [t.text for t in parser.toks[parser.i : parser.i + 9]]
    link = parser.definitions.get(LINK)
    return _reparam(texts + [None] * 9, parser.latent,
                    link.body if link is not None else None)  # fmt: skip


def _reparam(texts, latent, linked):
    """``reparam_at`` on the token texts ``texts`` (padded with None)."""
    if texts[0] in ("m", "\\mu") and texts[1:3] == ["+", "\\sigma"]:
        n = 4 if texts[3] in ("\\odot", "\\cdot") else 3
        if texts[n] in NOISE_TOKENS:  # and its sample index, if any
            return n + 1 + _index_count(texts, n + 1), ir.Reparam(diag=True)
    if texts[0] != latent:
        return 0, None
    if linked is not None and texts[1] == "_" and texts[2] not in NOISE_TOKENS:
        n = _index_count(texts, 1)
        if n:
            return 1 + n, linked
    if texts[1] == "(" and texts[2] in NOISE_TOKENS and texts[3] == ")":
        return 4, ir.Reparam()
    if texts[1] == "_" and texts[2] in NOISE_TOKENS:
        return 3, ir.Reparam()
    if texts[1:3] == ["_", "{"] and texts[3] in NOISE_TOKENS and texts[4] == "}":
        return 5, ir.Reparam()
    return 0, None


def _index_count(texts, k):
    """Token count of a sample index ``_s``, ``_1``, ``_{s}`` at ``texts[k]``."""
    if texts[k : k + 1] != ["_"] or len(texts) <= k + 1:
        return 0
    if texts[k + 1] == "{":
        return 4 if len(texts) > k + 3 and texts[k + 3] == "}" else 0
    return 2


def noise_argument(tokens, k):
    """Token count of ``(\\varepsilon)``, ``(\\varepsilon_1)``,
    ``(\\varepsilon_{s})`` at ``tokens[k]``, else 0."""
    texts = [t.text for t in tokens[k : k + 7]]
    if texts[:1] != ["("] or texts[1:2] not in ([n] for n in NOISE_TOKENS):
        return 0
    n = 2 + _index_count(texts, 2)
    return n + 1 if texts[n : n + 1] == [")"] else 0


def link(seq):
    """The position of ``=`` when the chain ``seq`` is ``z_s = m + \\sigma
    \\odot \\varepsilon_s`` (a sample index on both sides), else None."""
    texts = [t.text for t in seq]
    n = _index_count(texts, 1)
    if texts[:1] != ["z"] or not n or texts[1 + n : 2 + n] != ["="]:
        return None
    right = texts[2 + n :]
    count, at = _reparam(right + [None] * 9, "z", None)
    if at is None or not at.diag or count != len(right) or "_" not in right:
        return None
    return 1 + n


def drawn(k):
    """DRAWS fixed draws of the noise, (1, 1, DRAWS, k) (stream 20261127)."""
    eps = np.random.default_rng(20261127).standard_normal((DRAWS, k))
    return eps[None, None]


def average_var(body, parser):
    """The variable a Monte Carlo average of ``body`` draws: the noise when
    the body depends on the noise and not on the latent, else the latent."""
    try:
        free = ir.infer(body, parser.latent, parser.observed_name()).free
    except ir.Unsupported:
        return parser.latent
    return ir.NOISE if ir.NOISE in free and parser.latent not in free else parser.latent


def mc_draws(seed, count, k):
    """``count`` draws of the noise N(0, I_k), (1, 1, count, k), from the
    instance's stream [seed, 10]."""
    eps = np.random.default_rng([seed, 10]).standard_normal((count, k))
    return eps[None, None]
