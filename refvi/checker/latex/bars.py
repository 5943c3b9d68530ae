"""An evaluation bar that puts q at the exact posterior: ``\\big|_{q = p(z|x)}``.

``\\nabla_{m, L} \\hat F_A(\\varepsilon) \\big|_{q = p(z|x)}`` is the gradient
evaluated at q(z|x) = p(z|x): the Gaussian q whose mean and Cholesky factor
are the exact posterior's (the linear_gaussian and amortized settings,
``models.ContinuousModel.exact_q``), moved from there by the gradient. The
bar is read after a gradient (``Parser.gradient``) and applies to all of it
(``ir.AtExactQ``); ``\\big``, ``\\Big``, ``\\bigr`` are sizing, ``\\mid`` reads
``|``. A bar with another value is not read.
"""

#: The bar's subscripts read as q = p(z|x) (the latent z, the observed x).
_EXACT = (
    ["q", "=", "p", "(", "z", "|", "x", ")"],
    ["q", "(", "z", "|", "x", ")", "=", "p", "(", "z", "|", "x", ")"],
)


def bar_length(parser):
    """Token count of ``|_{q = p(z|x)}`` at the parser's position, else 0."""
    texts = [t.text for t in parser.toks[parser.i : parser.i + 18]]
    if texts[:3] != ["|", "_", "{"] or "}" not in texts:
        return 0
    inner = texts[3 : texts.index("}")]
    latent, observed = parser.latent, parser.observed_name()
    exact = [[{"z": latent, "x": observed}.get(t, t) for t in e] for e in _EXACT]
    return texts.index("}") + 1 if inner in exact else 0
