"""Failure hints: what a failing line's side actually computes.

When ``a = b`` fails, the value of ``b`` (then of ``a``) on every instance is
compared with a library of candidate expressions -- written in LaTeX and
evaluated by the same parser and evaluator, so the library is itself in the
vocabulary. A candidate matches when it agrees on every instance to
``MATCH_TOL`` relative deviation; the first match in library order is shown.
"""

import re

import numpy as np

from refvi.checker.latex import ir
from refvi.checker.latex.evaluate import EvaluationError, Evaluator, real
from refvi.checker.latex.parser import parse_equation
from refvi.checker.latex.tokens import tokenize

MATCH_TOL = 1e-7

#: (what is printed, its LaTeX), scalars of x.
SCALARS = (
    ("D_KL(q || p(z|x))", r"D_{KL}(q(z|x) \| p(z|x))"),
    ("D_KL(p(z|x) || q), the KL in the other direction", r"D_{KL}(p(z|x) \| q(z|x))"),
    ("D_KL(q || p(z)), the KL to the prior", r"D_{KL}(q(z|x) \| p(z))"),
    ("D_KL(p(z) || q)", r"D_{KL}(p(z) \| q(z|x))"),
    ("the ELBO", r"\mathrm{ELBO}"),
    ("minus the ELBO", r"-\mathrm{ELBO}"),
    ("log p(x)", r"\log p(x)"),
    ("-log p(x)", r"-\log p(x)"),
    (
        "E_q[log p(x|z)], the expected log-likelihood",
        r"\mathbb{E}_{q(z|x)}[\log p(x|z)]",
    ),
    ("E_q[log p(x,z)]", r"\mathbb{E}_{q(z|x)}[\log p(x,z)]"),
    ("H[q], the entropy of q", r"H[q(z|x)]"),
    ("-H[q]", r"-H[q(z|x)]"),
    ("log p(x) + D_KL(q || p(z|x))", r"\log p(x) + D_{KL}(q(z|x) \| p(z|x))"),
    ("2 log p(x) - ELBO", r"2\log p(x) - \mathrm{ELBO}"),
    ("-D_KL(q || p(z|x))", r"-D_{KL}(q(z|x) \| p(z|x))"),
    (
        "-p(x) ELBO: p(x) multiplies the log instead of sitting inside it",
        r"-p(x) \mathrm{ELBO}",
    ),
    ("0", "0"),
)

#: Densities of z (or x): compared by their logs.
DENSITIES = (
    ("p(z), the prior", r"p(z)"),
    ("p(z|x), the posterior", r"p(z|x)"),
    ("q(z|x)", r"q(z|x)"),
    ("p(x,z), the joint", r"p(x,z)"),
    ("p(x|z), the likelihood", r"p(x|z)"),
    ("p(x) p(z), a product of marginals", r"p(x) p(z)"),
    ("p(x)", r"p(x)"),
    (
        "int p(z|x) p_theta(x) dx: the posterior averaged over the model's "
        "marginal, not over p_data",
        r"\int p(z|x) p_{\theta}(x) dx",
    ),
    (
        "int q(z|x) p_data(x) dx, the aggregated posterior",
        r"\int q(z|x) p_{data}(x) dx",
    ),
)


_NAMED = (ir.Density, ir.KL, ir.Entropy, ir.ELBO, ir.Number, ir.Log)


def _parse(latex, scope):
    eq = parse_equation(tokenize(latex), (scope.latent, scope.observed), scope.latent)
    return eq.exprs[0]


def _plain(node):
    """``node`` rendered without decorations (p_theta(z) reads as p(z))."""
    return re.sub(r"([pq])_\w+\(", r"\1(", ir.describe(node))


def _binds_x(node, scope):
    """Whether ``node`` integrates or takes an expectation over x."""
    if isinstance(node, ir.Integral | ir.Expectation) and node.var == scope.observed:
        return True
    children = [getattr(node, f) for f in getattr(node, "__dataclass_fields__", ())]
    flat = [c for ch in children for c in (ch if isinstance(ch, tuple) else (ch,))]
    return any(_binds_x(c, scope) for c in flat if hasattr(c, "__dataclass_fields__"))


def _matches(node, targets, scope, dens):
    for model, target in targets:
        ev = Evaluator(model, scope.shorthands, 0, scope.latent, scope.observed)
        free_z = scope.latent in ir.infer(node, scope.latent, scope.observed).free
        try:
            v = ev.value(node, free_z)
        except (ir.Unsupported, EvaluationError, ValueError):
            return False
        if dens:
            a, b = np.broadcast_arrays(v[0], target[0])
            if np.any(v[1] <= 0) or np.any(target[1] <= 0):
                return False
            if np.max(np.abs(a - b)) > MATCH_TOL:
                return False
        else:
            a, b = np.broadcast_arrays(real(v), real(target))
            scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
            if np.max(np.abs(a - b) / scale) > MATCH_TOL:
                return False
    return True


def match_hint(verdict, rel, scope):
    """The first candidate equal to the right side (else the left), or None.

    A candidate written exactly as the side itself says nothing and is skipped.
    """
    sides = [("", verdict.values, rel.right, rel.left)]
    if isinstance(rel.right, _NAMED):  # "A = p(z)": say what A is instead
        sides.append(("its left side ", verdict.lefts, rel.left, rel.right))
    for side, targets, written, other in sides:
        dens = all(np.all(t[1] > 0) for _, t in targets) and any(
            np.ndim(t[0]) == 3 and np.shape(t[0])[2] > 1 for _, t in targets
        )
        library = DENSITIES if dens else SCALARS
        for label, latex in library:
            node = _parse(latex, scope)
            if _plain(node) == _plain(written):
                continue
            if isinstance(node, ir.Integral) and not _binds_x(other, scope):
                continue  # "p(z) = int p(z|x) p(x) dx" says something only
                # when the other side is itself an average over x
            if _matches(node, targets, scope, dens):
                return f"{side}{label}" if not side else f"{label} ({side.strip()})"
    return None
