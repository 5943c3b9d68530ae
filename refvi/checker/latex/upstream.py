"""Upstream weights a derivation declares in its prose.

A backward pass is derived for ``f = \\sum_i g_i \\ell_i`` with arbitrary
weights g_i (``dout``, the upstream gradient). The prose declares them:
"with (scalar) upstream gradient(s) $g_i$", "upstream weights $\\delta_i$",
"with weights $g_i$" -- the inline math a single symbol with a data index
(i or n). From the start of the paragraph that declares it, ``g_i`` is one
arbitrary number per datum (``ir.Weight``): each instance draws its own
from its own stream, the same at every point where a derivative moves a
parameter, so a line holds only if it holds for every choice of weights. A
declaration that gives the weight a shape of more than one entry per datum
("shape $(n, d)$") is recorded, and its uses are unsupported.
"""

import re
import zlib
from dataclasses import dataclass

import numpy as np

from refvi.checker.latex import ir
from refvi.checker.latex.definitions import Definition
from refvi.checker.latex.parser import RELATIONS, nodes
from refvi.checker.latex.tokens import mask_fences

_DECLARED = re.compile(
    r"(?:upstream\s+(?:gradients?|weights?)|(?<![\w\\])with\s+weights)\s+"
    r"\$\s*(\\?[A-Za-z]+)\s*_\s*(?:\{\s*([in])\s*\}|([in]))\s*\$",
    re.I,
)
#: A shape after the declaration: more than one entry per datum.
_SHAPED = re.compile(r"^[^.$]{0,30}shape\s*\$\s*\(\s*[nN]\s*,")


@dataclass(frozen=True)
class Declaration:
    """The upstream weight ``name`` with data index ``index``, declared at
    file line ``at`` in the paragraph starting at line ``line``; ``vector``:
    declared with more than one entry per datum."""

    line: int
    name: str
    index: str
    vector: bool
    at: int


def declarations(text, first_line=1):
    """The upstream weights the Markdown ``text`` declares in its prose
    (outside code), in order; each in scope from its paragraph's start."""
    masked = mask_fences(text)
    out = []
    for m in _DECLARED.finditer(masked):
        start = masked.rfind("\n\n", 0, m.start())
        start = 0 if start < 0 else start + 2
        line = first_line + masked.count("\n", 0, start)
        vector = bool(_SHAPED.search(masked[m.end() : m.end() + 60]))
        at = first_line + masked.count("\n", 0, m.start())
        out.append(Declaration(line, m.group(1), m.group(2) or m.group(3), vector, at))
    return out


def record(decl, defined):
    """Record the declaration ``decl`` in ``defined`` (``definitions``: the
    symbol with its index stands for an ``ir.Weight``); returns its note."""
    shown = f"${decl.name}_{decl.index}$"
    if decl.vector:
        defined[f"{decl.name}[]"] = Definition(
            decl.name, decl.index, None, decl.line,
            "an upstream gradient with more than one entry per datum "
            "(only scalar upstream weights g_i are drawn)",
        )  # fmt: skip
        return (
            f"line {decl.line}: {shown} is an upstream gradient with more than "
            "one entry per datum: its uses are unsupported"
        )
    defined[f"{decl.name}[]"] = Definition(
        decl.name, decl.index, ir.Weight(decl.name), decl.line
    )
    return (
        f"line {decl.line}: {shown} is declared an upstream weight: an arbitrary "
        "number per datum, drawn on each instance"
    )


def weights(model, name):
    """The upstream weights ``name`` on ``model``: one standard normal number
    per datum of its data (``x_data``), from a stream of the instance (its
    label) and the name, so a moved copy of the instance has the same."""
    root = model
    while getattr(root, "base", None) is not None:
        root = root.base
    n = model.x_data().shape[0]
    seed = zlib.crc32(f"{root.label.split(',')[0]}|{name}".encode())
    return np.random.default_rng([seed, 11]).standard_normal(n)


# -- the quantity a derivative without an argument differentiates ------------

#: The key in ``definitions`` of the quantity ``\frac{\partial}{\partial P}``
#: without an argument differentiates (``parser.Parser.partial``).
REFERENT = "\\partial"


def named_derivatives(text, first_line=1):
    """(line, tokens of X) of every ``\\partial X / \\partial ...`` and
    ``\\frac{\\partial X}{\\partial ...}`` in the inline math of the prose
    of the Markdown ``text`` (outside displays and code), in order."""
    from refvi.checker.latex.prose import _INLINE_RE
    from refvi.checker.latex.tokens import MalformedLatex, display_spans, read_display

    masked = mask_fences(text)
    shown = set()
    for span in display_spans(text, first_line):
        shown.update(range(span.line, span.end + 1))
    out = []
    for m in _INLINE_RE.finditer(masked):
        line = first_line + masked.count("\n", 0, m.start())
        if line in shown or "\\partial" not in m.group(0):
            continue
        src = m.group(1) if m.group(1) is not None else m.group(2)
        try:
            rows = read_display(src, line).rows
        except MalformedLatex:
            continue
        toks = [t for row in rows for t in row]
        for k, t in enumerate(toks):
            if t.text != "\\partial":
                continue
            end = next((j for j in range(k + 1, len(toks))
                        if toks[j].text in ("/", "}")), None)  # fmt: skip
            if end is not None and end > k + 1:
                out.append((line, toks[k + 1 : end]))
    return out


class Referent:
    """What ``\\frac{\\partial}{\\partial P}`` with no argument differentiates.

    The rule: the quantity Q the text last differentiated by name -- the
    argument of the last derivative in a display, or X in the prose's
    ``\\partial X / \\partial P`` -- summed over the data with the upstream
    weight g declared after Q was named, sum_i g_i Q_i (the backward pass
    of a batch: "for a batch with upstream weights $g_i$: ∂/∂μ = ...").
    Without a weight declared since Q was named, or without a Q, a
    derivative without an argument is unsupported: what it differentiates
    is not determined by the text.
    """

    def __init__(self):
        self.quantity = None  # (node, line) of Q
        self.weight = None  # the Declaration made after Q was named

    def named(self, node, line):
        self.quantity, self.weight = (node, line), None

    def declared(self, decl):
        if self.quantity is not None and not decl.vector:
            self.weight = decl

    def record(self, defined):
        """Put the current referent in ``defined`` under ``REFERENT``."""
        if self.quantity is None:
            defined.pop(REFERENT, None)
            return
        node, line = self.quantity
        if node is None:
            defined[REFERENT] = Definition(
                REFERENT, None, None, line,
                f"the quantity differentiated at line {line} cannot be read",
            )  # fmt: skip
            return
        if self.weight is None:
            defined[REFERENT] = Definition(
                REFERENT, None, None, line,
                f"no upstream weight is declared after the quantity named at line "
                f"{line}, {ir.describe(node)}: a derivative without an argument "
                "is that of a batch with upstream weights g_i",
            )  # fmt: skip
            return
        g = self.weight
        weight = ir.Defined(f"{g.name}_{g.index}", ir.Weight(g.name), g.line)
        body = ir.DataSum(ir.Mul((weight, node)), g.index)
        defined[REFERENT] = Definition(REFERENT, None, body, line)


def differentiated(exprs):
    """The argument of the last derivative written with one in ``exprs``
    (a derivative of the referent itself does not name a new quantity)."""
    found = None
    for e in exprs:
        for node in nodes(e):
            if isinstance(node, ir.MatGrad | ir.Grad) and not (
                isinstance(node.body, ir.Defined) and node.body.name == REFERENT
            ):
                found = node.body
    return found


def names_quantity(seq):
    """Whether the chain ``seq`` differentiates a quantity it writes:
    ``\\frac{\\partial X}{\\partial P}`` or ``\\frac{\\partial}{\\partial P} X``
    (not ``\\frac{\\partial}{\\partial P}`` alone before a relation)."""
    texts = [t.text for t in seq]
    for k in range(len(texts) - 2):
        if texts[k : k + 3] != ["\\frac", "{", "\\partial"]:
            continue
        if k + 3 < len(texts) and texts[k + 3] != "}":
            return True
        depth, j = 0, k + 5  # after '} {'
        while j < len(texts):
            depth += {"{": 1, "}": -1}.get(texts[j], 0)
            if depth < 0:
                break
            j += 1
        after = texts[j + 1] if j + 1 < len(texts) else None
        if after is not None and after not in (*RELATIONS, ",", "\\quad", "\\qquad"):
            return True
    return False
