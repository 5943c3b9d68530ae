"""Symbols a derivation defines in its displays, and their later uses.

A chain whose left side is a symbol that means nothing yet -- not a symbol
the file's settings bind (``models.MATRIX_SYMBOLS``), not a variable, a
density or any other word of the vocabulary -- and whose first relation is
``=`` or ``:=`` (``\\equiv``, ``\\triangleq``, ``\\coloneqq`` read ``:=``)
defines it: ``M = L_q^{-1} L_p``, ``\\delta := L_q^{-1}(\\mu_p - \\mu_q)``, or
with an index, ``\\rho_j = ...`` (then ``\\rho_k`` is the right side at k).
The line is reported as a definition, not as a claim; later relations of the
same chain (``S = (I + W^\\top \\Psi^{-1} W)^{-1} = M^{-1}``) are checked.

**Scope.** A definition holds from the display that makes it (all of that
display: a trailing "where M = ..., \\delta = ..." defines what the display's
first chain uses) to the end of the file, or until the symbol is defined
again with ``:=``; once defined, ``M = ...`` is a claim about M, checked.
Every later use is replaced by the right side as read at the definition
(``ir.Defined``), evaluated on each instance like the rest of the line. A
right side that cannot be read makes each later use unsupported with a
message naming the definition's line; one that cannot be evaluated
likewise (``evaluate``).

**The setting's own names are never replaced.** A left side the settings
already bind (``C``, ``S``, ``M`` in ``linear_gaussian``) is a claim about
that symbol, checked as any other ``=``; with ``:=`` it stays an unchecked
definition and its note says that later lines use the setting's value.
"""

import dataclasses
from dataclasses import dataclass

from refvi.checker.latex import estimators, ir, noise
from refvi.checker.latex.parser import RELATIONS, Parser

#: Relations that define a new symbol on their left.
DEFINING = ("=", ":=")


@dataclass(frozen=True)
class Definition:
    """``name`` (``index``: the index it was defined with, or None) stands
    for ``body`` from file line ``line``; ``error`` says why the right side
    could not be read (``body`` is then None)."""

    name: str
    index: str | None
    body: object
    line: int
    error: str | None = None

    def use(self, shown, index):
        """The node of a use written with ``index`` (None: without one)."""
        if self.error is not None:
            raise ir.Unsupported(
                f"{shown}: its definition at line {self.line} cannot be read "
                f"({self.error})"
            )
        body = self.body
        if self.index is not None and index != self.index:
            body = rename(body, self.index, index)
        label = f"{shown}_{index}" if index else shown
        return ir.Defined(label, body, self.line)


def rename(node, old, new):
    """``node`` with the free index ``old`` renamed ``new`` (entries,
    components, diagonals); an index sum that binds ``old`` is left alone."""
    if isinstance(node, ir.IndexSum | ir.IndexMax) and node.index == old:
        return node
    if not dataclasses.is_dataclass(node):
        return node
    changes = {}
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, tuple):
            changes[f.name] = tuple(
                rename(c, old, new) if dataclasses.is_dataclass(c) else c for c in v
            )
        elif dataclasses.is_dataclass(v):
            changes[f.name] = rename(v, old, new)
    if isinstance(node, ir.Elem):
        changes["indices"] = tuple(new if i == old else i for i in node.indices)
    if isinstance(node, ir.Comp | ir.Diag) and node.index == old:
        changes["index"] = new
    return dataclasses.replace(node, **changes)


#: Letters an indexed definition is written with (\rho_j, V_j, u_a).
INDEX_LETTERS = ("j", "a", "b", "l")
#: Symbols the vocabulary gives a meaning of its own (a parameter of q or of
#: the model, a constant, an abstract function, the ELBO, an entropy, a
#: count, ...): never defined by a display, so an update ``\mu_k = ...``
#: or ``\pi_k = ...`` stays a claim.
RESERVED = {
    "\\mu", "\\sigma", "\\pi", "\\theta", "\\phi", "\\varphi", "\\vartheta",
    "\\Theta", "\\Sigma", "\\psi", "\\Psi", "\\eta", "\\omega", "\\alpha",
    "\\beta", "\\gamma", "\\lambda", "\\Lambda", "\\nabla", "\\partial",
    "f", "g", "h", "e", "p", "q", "x", "z", "E", "D", "F", "H", "I", "J", "K", "N",
    "Q", "X", "Z",
}  # fmt: skip
#: Data and sample indices: a symbol with one and more (``y_{ik}``) is a
#: datum's, not defined once for the file; with one alone (``a_i = L^{-\top}
#: L^{-1}(x_i - \mu)``) it is defined per datum: its right side read where
#: x_i is the datum x, as in a sum over the data.
DATA_INDICES = ("i", "n")


def _left(seq, letters=INDEX_LETTERS, reserved=RESERVED):
    """(symbol token, index or None, position of the first relation) when
    the chain starts ``X =``, ``X_j =``, ``X_{q} :=`` ...; else None;
    ``letters``: the indices a definition may be written with."""
    pos = next((k for k, t in enumerate(seq) if t.text in RELATIONS), None)
    if pos is None or seq[pos].text not in DEFINING or pos == 0:
        return None
    head, rest = seq[0], [t.text for t in seq[1:pos]]
    if head.kind not in ("letter", "cmd") or head.text in reserved:
        return None
    if not rest:
        return head, None, pos
    sub = [t for t in rest[1:] if t not in ("{", "}")]
    if rest[0] != "_" or not sub or not all(t.isalnum() for t in sub):
        return None
    if sub in (["i"], ["n"]):  # a_i: a datum's, its body read at the datum
        return head, sub[0], pos
    if any(c in DATA_INDICES for t in sub for c in t):
        return None
    index = sub[0] if len(sub) == 1 and sub[0] in letters else None
    return head, index, pos


def target(seq, variables, latent, symbols, defined, reserved=RESERVED, again=False):
    """(key, index, position of the relation, whether the left side is the
    setting's own) of the symbol the chain ``seq`` defines, or None when it
    defines nothing. The key is the symbol (``M``, ``L_M``, ``\\delta``), or
    for a symbol with an index (``\\rho_j``) its head and ``[]``."""
    at = noise.link(seq)
    if at is not None:  # z_s = m + \\sigma \\odot \\varepsilon_s
        return noise.LINK, None, at, False
    hat = estimators.defining(seq, RELATIONS)
    if hat is not None:  # an estimator, \hat F(\varepsilon) = ...
        key, pos = hat
        if key in defined and seq[pos].text != ":=":
            return None
        return key, None, pos, False
    # index letters, with the free indices the settings allow (``index:k``)
    free = tuple(s[6:] for s in symbols or () if s.startswith("index:"))
    left = _left(seq, INDEX_LETTERS + free, reserved)
    if left is None:
        return None
    head, index, pos = left
    lhs = seq[:pos]
    sub = "".join(t.text for t in lhs[2:] if t.text not in ("{", "}"))
    whole = f"{head.text}_{sub}" if len(lhs) > 1 else head.text
    key = f"{head.text}[]" if index is not None else whole
    family = len(sub) <= 1 and f"{head.text}[]" in symbols  # C_j, not C_{xm}
    if whole in symbols or family:
        return whole, None, pos, True
    if key in defined:  # defined again by := (or in the prose); with =, a claim
        return (key, index, pos, False) if seq[pos].text == ":=" or again else None
    try:
        parser = Parser(lhs, variables, latent, matrices=symbols)
        parser.expr()
        if parser.peek() is None:
            return None  # the left side already means something
    except ir.Unsupported as err:
        if err.token is not head:
            return None
    return key, index, pos, False


def define(seq, pos, key, index, scope, symbols, defined):
    """The ``Definition`` of ``key`` by the right side of ``seq`` (after the
    relation at ``pos``, up to the next one): in matrix notation (an indexed
    one with its index free), else plainly."""
    if key == noise.LINK:  # the latent with a sample index, through the noise
        return Definition(key, None, ir.Reparam(diag=True), seq[pos].line)
    tokens = seq[pos + 1 :]
    rel = next((k for k, t in enumerate(tokens) if t.text in RELATIONS), len(tokens))
    tokens = tokens[:rel]
    line = seq[pos].line
    variables = (scope.latent, scope.observed)
    # matrix notation first: a defined symbol is used where matrix notation
    # is read (a plain reading would take x as a number, \mu as q's mean)
    modes = (symbols,) if index is not None or not symbols else (symbols, None)
    error = None
    for matrices in modes:
        try:
            p = Parser(tokens, variables, scope.latent, (), matrices, defined)
            if index is not None and index not in DATA_INDICES:
                p.indices.add(index)
            if not tokens:
                raise ir.Unsupported("the right side is empty")
            body = p.expr()
            if p.peek() is not None:
                raise p.unsupported(p.peek())
            ir.infer(body, scope.latent, scope.observed)
            estimators.require_concrete(key, body)
            return Definition(key, index, body, line)
        except ir.Unsupported as err:
            if error is None:
                error = err
    tok = getattr(error, "token", None)
    shown = (
        f" (token '{tok}')" if tok is not None and str(tok) not in str(error) else ""
    )
    return Definition(key, index, None, line, f"{error}{shown}")
