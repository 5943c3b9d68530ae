"""Statements entry by entry, and the elementwise maximum, in matrix notation.

``\\psi_j = \\max(\\hat\\Sigma_{jj} - \\sum_a W_{ja} (C_{xm})_{ja},
\\psi_{\\text{floor}})``: an entry index that no sum binds (``j``, the index
derivations use for a coordinate of the data) states the line for every
entry: the line is checked at each j in the range of the entries it picks
(``evaluate``: as a free component index is, one value per j, stacked).
``\\max(a, b)`` is the larger of two numbers, entry by entry for two
matrices of one size (``numpy.maximum``). ``\\max`` without a bracket right
after it (``\\max_q``) is not this.
"""

from refvi.checker.latex import ir

#: Entry indices a line may leave free (then it is claimed at every entry).
FREE_ENTRIES = ("j",)


def reads_as_entry(p, base, texts, idx):
    """Whether ``base_{texts}`` at the parser ``p`` (matrix notation) is an
    entry of the bound symbol ``base`` with a free index among its indices
    (``\\psi_j``, ``W_{ja}`` with a bound, ``\\hat\\Sigma_{jj}``), rather
    than a symbol of its own name."""
    name = f"{base}_{''.join(texts)}"
    if idx or not texts or name in p.matrices or name in p.definitions:
        return False
    if base not in p.matrices and base not in p.definitions:
        return False
    free = [c for c in texts if c not in p.indices]
    return bool(free) and all(c in FREE_ENTRIES for c in free)


def maximum(p):
    """``\\max(a, b)`` at the parser ``p``: ``ir.Max``."""
    tok = p.take()
    p.expect("(")
    first = p.expr()
    if not p.at(","):
        raise p.unsupported(tok, "\\max(a, b) takes two arguments")
    p.take()
    second = p.expr()
    p.expect(")")
    return ir.Max((first, second))
