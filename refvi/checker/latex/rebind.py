"""Densities a derivation defines in a display: ``q(z|x) := p(z)``.

A derivation that studies a special case says so with a definition of one of
the model's densities: "the encoder that ignores x and returns the prior,
``q_\\phi(z|x) := p_\\theta(z)``", or "the aggregate over the model's own
marginal, ``q_\\phi(z) := \\int q_\\phi(z|x) p_\\theta(x) dx``". From that
display to the end of its section (the next heading) the density means what
the definition says: every use of it is evaluated as the defining expression
(``evaluate.Evaluator``, through ``Shorthands.rebound``), so the lines that
hold only in that case are checked in it and a line wrong in it still fails.

A definition is read from a ``:=`` (``\\coloneqq``, ``\\triangleq``, ...)
whose defined side is a density of the model (``=:`` defines its right
side). A definition whose other side cannot be read leaves the density
without a value for the rest of its section: a line that uses it is
unsupported (never judged on the density the definition replaced).
"""

from dataclasses import replace

from refvi.checker.latex import ir
from refvi.checker.latex.evaluate import resolve

#: Why a line that uses a density defined in a form the checker cannot read
#: is not checked (``{density}``, ``{line}``, ``{why}``).
UNREADABLE = (
    "{density} is defined on line {line} in a form the checker cannot read "
    "({why}); the lines of that section that use it are not checked"
)


def key(d, sh, latent, observed):
    """What a density names, as a definition replaces it: the model density
    it resolves to, its variables and conditioning, and the parameters it is
    at (``q(z)`` and ``q(z|x)`` are distinct even where both are q)."""
    kind = resolve(d, sh, latent, observed)
    variables, given = ir.density_vars(d, latent)
    return kind, frozenset(variables), frozenset(given), d.at


def defined(rel):
    """(the density, its defining expression) of a definition ``rel``, or
    None when it defines no density."""
    if rel.op == ":=":
        target, expr = rel.left, rel.right
    elif rel.op == "=:":
        target, expr = rel.right, rel.left
    else:
        return None
    if not isinstance(target, ir.Density) or target.vars is None:
        return None
    return target, expr


def definitions(eq, scope):
    """The entries of ``Shorthands.rebound`` the chain ``eq`` makes, in
    order: (key, expression or None, why None) per density it defines."""
    out = []
    for rel in eq.relations:
        found = defined(rel)
        if found is None:
            continue
        target, expr = found
        try:
            k = key(target, scope.shorthands, scope.latent, scope.observed)
        except ir.Unsupported:
            continue  # not a density of the model: an ordinary definition
        free = ir.infer(expr, scope.latent, scope.observed).free
        if not free <= k[1] | k[2]:
            why = f"its value depends on {', '.join(sorted(free - k[1] - k[2]))}"
            out.append((k, None, _unreadable(target, rel.line, why)))
            continue
        out.append((k, expr, None))
    return out


def unreadable(target, line, err, scope):
    """The entry of a density ``target`` whose definition on ``line`` could
    not be read (``err``), or None when ``target`` is no model density."""
    try:
        k = key(target, scope.shorthands, scope.latent, scope.observed)
    except ir.Unsupported:
        return None
    return k, None, _unreadable(target, line, err)


def _unreadable(target, line, why):
    return UNREADABLE.format(density=ir.describe(target), line=line, why=why)


def is_rebound(target, scope):
    """Whether the density ``target`` has a readable definition in ``scope``."""
    try:
        k = key(target, scope.shorthands, scope.latent, scope.observed)
    except ir.Unsupported:
        return False
    found = [expr for key_, expr, _ in scope.shorthands.rebound if key_ == k]
    return bool(found) and found[-1] is not None


def with_rebound(scope, entries):
    """``scope`` with the densities ``entries`` define (``Shorthands.rebound``)."""
    if not entries:
        return scope
    sh = scope.shorthands
    return replace(scope, shorthands=replace(sh, rebound=sh.rebound + tuple(entries)))
