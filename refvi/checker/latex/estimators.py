"""Estimators as named objects: a hat on a symbol, defined once, used after.

An estimator is written with a hat, ``\\hat F_B``, ``\\hat{F}_{A}``, ``\\hat
g_{SF}``, ``\\hat D``, usually as a function of the reparameterization's
noise: ``\\hat F_B(\\varepsilon) = \\log p(x | z(\\varepsilon)) - D_{KL}(q \\|
p(z))``. Such a chain -- in a display, or in inline math of the prose
anywhere (the hat and the argument mark it as a definition, no introducing
word is needed) -- defines the estimator by its right side
(``definitions.define``); a later ``\\hat F_B(\\varepsilon)`` is that right
side at the noise in scope, so ``\\mathbb{E}_{\\varepsilon}[\\hat
F_B(\\varepsilon)]`` is its expectation over the noise (``noise.py``) and a
claim about that expectation (unbiasedness) is checked by the noise's
Gauss-Hermite rule. An estimator used before it is defined is unsupported,
with the form that defines it. A hat on a word or on the expectation names
an estimator too: ``\\widehat{\\operatorname{se}} = ...`` (a standard
error), ``\\hat{\\mathbb{E}}_q[f] = \\frac1S \\sum_s h_s`` (an estimate of
an expectation, with its integrand as the argument). The hat marks the line
as a definition whatever its right side: one that cannot be read (an
abstract f, h_s = f(z_s) given in words) is recorded as a definition, not
checked, and each later use is unsupported (``check._definition_line``).
``\\hat q``, ``\\hat p`` are not estimators (``Parser.skip_hat_q``: the
setting's q).
"""

import dataclasses

from refvi.checker.latex import ir, noise


def _name(tokens, k):
    """(token count, key) of a hat name starting at ``tokens[k]``, else None:
    an accented letter (one token, ``\\hat{F}``, ``accents.py``) and its
    subscript. The key is the name, ``\\hat{F}_B``."""
    texts = [t.text for t in tokens[k:]]
    head = texts[0] if texts else ""
    inner = head[5:-1] if head.startswith("\\hat{") else ""
    if not (inner.isalpha() or inner == EXPECTATION):
        return None
    j, sub = 1, ""
    if texts[j : j + 1] == ["_"]:
        if texts[j + 1 : j + 2] == ["{"]:
            if "}" not in texts[j + 2 :]:
                return None
            close = texts.index("}", j + 2)
            sub, j = "".join(texts[j + 2 : close]), close + 1
        elif len(texts) > j + 1:
            sub, j = texts[j + 1], j + 2
    return j, head + (f"_{sub}" if sub else "")


#: The expectation under a hat, ``\\hat{\\mathbb{E}}_q[f]``.
EXPECTATION = "\\mathbb{E}"


def _argument(tokens, k):
    """Token count of an estimator's argument at ``tokens[k]``: the noise
    (``noise.noise_argument``) or an integrand, ``[f]``."""
    texts = [t.text for t in tokens[k : k + 3]]
    if len(texts) == 3 and texts[0] == "[" and texts[2] == "]" and texts[1].isalpha():
        return 3
    return noise.noise_argument(tokens, k)


def defining(seq, relations):
    """(key, position of the relation) when the chain ``seq`` starts with a
    hat name, with or without ``(\\varepsilon)``, and ``=`` or ``:=``."""
    found = _name(seq, 0)
    if found is None:
        return None
    n, key = found
    argument = _argument(seq, n)
    if argument not in (0, 3):  # at a draw, \hat F(\varepsilon_1): a claim
        return None
    n += argument
    if n < len(seq) and seq[n].text in relations and seq[n].text in ("=", ":="):
        return key, n
    return None


def estimate_atom(parser):
    """The defined estimator at the parser's position (its right side, an
    ``ir.Defined``), None when no hat name is there; an undefined one is
    unsupported."""
    found = _name(parser.toks, parser.i)
    if found is None:
        return None
    n, key = found
    tok = parser.peek()
    if key not in parser.definitions:
        raise parser.unsupported(
            tok,
            f"the estimator {key} is not defined: define it "
            "first, $\\hat F(\\varepsilon) = ...$",
        )
    parser.i += n
    parser.i += _argument(parser.toks, parser.i)
    return parser.definitions[key].use(key, None)


def require_concrete(key, body):
    """Refuse an estimator whose right side applies an abstract function (f,
    g, h of ``ir.Func``): the line would check it with arbitrary functions,
    while a derivation names by f the integrand it gave in words."""
    if not key.startswith("\\hat{"):
        return
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, ir.Func):
            raise ir.Unsupported(
                f"the estimator {key} applies the abstract function {node.name}: "
                f"write {node.name}'s formula in the estimator"
            )
        if dataclasses.is_dataclass(node):
            for f in dataclasses.fields(node):
                v = getattr(node, f.name)
                stack.extend(v if isinstance(v, tuple) else [v])
