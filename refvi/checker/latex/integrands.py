"""An abstract integrand under an expectation, and the noise a subscript names.

A derivation states a rule for any integrand f: ``\\mathbb{E}_q[f]`` is the
expectation of f at the expectation's variable, ``\\mathbb{E}_{z \\sim
q}[f(z)]`` (f, g, h not bound as a density: ``ir.Func`` of that variable,
checked with several functions in turn, ``evaluate.FUNCTIONS``). A standard
normal variable other than epsilon, declared as the subscript
``\\xi \\sim \\mathcal{N}(0, I)``, is the reparameterization's noise inside
that expectation's body only: ``\\mathbb{E}_{\\xi \\sim \\mathcal{N}(0,
I)}[f(m_q + L_q \\xi)]`` is f at q's reparameterized latent m_q + L_q xi
(``ir.Reparam``), integrated by the noise's Gauss-Hermite rule. Outside such
a body xi means nothing (a quadrature node xi_i stays unsupported).
"""

from refvi.checker.latex import ir
from refvi.checker.latex.noise import NOISE_TOKENS

#: q's reparameterized latent through a full scale, before the noise.
_FULL = ["m", "_", "q", "+", "L", "_", "q"]


def bare_integrand(parser, var, function_names):
    """``[f]`` at the parser's position, f an abstract function, as f at the
    expectation's variable ``var`` (consumed); None when it is not there."""
    texts = [t.text if t is not None else None for t in
             (parser.peek(k) for k in range(3))]  # fmt: skip
    name = texts[1]
    if texts[0] != "[" or texts[2] != "]" or name not in function_names:
        return None
    if name in parser.mixtures or var is None:
        return None
    parser.i += 3
    return ir.Func(name, ir.Var(var))


def reparam_shape(shape, noise_names):
    """``ir.Reparam`` when the argument tokens ``shape`` (``\\odot`` removed)
    are q's reparameterized latent at a bound noise, else None: ``\\mu +
    \\sigma \\epsilon`` (a diagonal q) or ``m_q + L_q \\xi``."""
    names = set(NOISE_TOKENS) | set(noise_names)
    if shape[:3] == ["\\mu", "+", "\\sigma"] and shape[3:] in [[n] for n in names]:
        return ir.Reparam(diag=True)
    if shape[:-1] == _FULL and shape[-1:] in [[n] for n in names]:
        return ir.Reparam()
    return None
