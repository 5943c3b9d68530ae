"""Parser: tokens of a display equation -> typed intermediate form (``ir.py``).

Grammar (implicit multiplication binds tighter than ``+``/``-``)::

    chain  := expr (REL expr)*          REL: = \\neq \\le \\ge < > := =:
    expr   := [+-] term ([+-] term)*
    term   := factor (['\\cdot'] factor)*
    factor := power | \\log ARG | \\exp ARG | \\sum_k REST
    power  := atom [^ atom]
    atom   := number | \\pi | e | variable | ( expr ) | [ expr ] | { expr }
            | \\frac{expr}{expr} | density | \\int expr d<var>
            | E_{measure}[expr] | D_KL(density || density) | H[density] | ELBO

**Ambiguity.** ``\\log`` (or ``\\exp``) followed by a bracketed group takes that
group. Otherwise it takes the rest of the product up to the next ``+``, ``-``,
``\\cdot``, relation, closing bracket or differential -- the conventional
reading -- and when that rest holds more than one factor the site is
ambiguous: the other reading applies the log to the first factor only. When
that first factor is a ``\\frac`` (a delimited group, like a bracket), the
readings swap: ``\\log \\frac{a}{b} c`` is read ``\\log(a/b) c`` first.
:func:`parse_equation` takes one choice per site; :func:`readings` enumerates
all of them, conventional first.
"""

import dataclasses
import itertools
import math
import re

from refvi.checker.latex import bars, estimators, integrands, ir, labels, noise
from refvi.checker.latex.entries import FREE_ENTRIES, maximum, reads_as_entry
from refvi.checker.latex.estimates import read_estimates
from refvi.checker.latex.noise import NOISE_TOKENS
from refvi.checker.latex.tokens import MalformedLatex

RELATIONS = {"=", "\\neq", "\\le", "\\ge", "<", ">", ":=", "=:", "\\approx",
             "\\propto"}  # fmt: skip
_UNSUPPORTED_RELATIONS = {"\\equiv", "\\sim", "\\simeq"}
_CLOSERS = {")", "]", "}", "||", "|", ",", ";", "&", "\\}", "\\rangle"}
_KL_NAMES = {"KL", "D_KL", "mathbb:KL", "mathrm:KL"}
_ELBO_NAMES = {"ELBO", "mathcal:L", "mathcal:F", "mathrm:ELBO"}
_ENTROPY_NAMES = {"mathbb:H", "mathcal:H", "H"}
_GREEK = {"\\theta", "\\phi", "\\psi", "\\lambda", "\\eta", "\\varphi", "\\vartheta"}
#: Parameters of the whole model: in the conditioning of a density they name
#: the model, not a variable (p(x|z;\theta), p(x|z,\theta), p(x|\theta)).
_MODEL_PARAMETERS = {"\\theta", "\\phi", "\\varphi", "\\vartheta", "\\Theta"}
_OPEN_BRACES = {"(": ")", "[": "]", "{": "}", "\\{": "\\}", "\\langle": "\\rangle"}
#: The model's parameters at another value: \theta^{old}, \theta^{(t)} (the
#: parameters an EM step starts from), \theta^{new}, \theta^{(t+1)}, \theta'
#: (the parameters it ends at).
PARAMETER_VERSIONS = {"old": "old", "t": "old", "new": "new", "t+1": "new"}
#: Letters of functions a derivation leaves abstract.
FUNCTION_NAMES = ("f", "g", "h")
#: The noise of the reparameterization trick.
#: Indices of a sum over the data (\sum_i, \sum_n; any index up to N).
DATA_INDICES = ("i", "n")
#: The number of data points, the upper limit of a sum over them.
DATA_COUNTS = ("N", "n")
MAX_AMBIGUOUS_SITES = 4
#: Symbols of matrix notation with a value per datum (the posterior mean m,
#: b = C^{-1} r, the residual r): ``m_i`` is m at the datum x_i.
PER_DATUM_SYMBOLS = ("m", "b", "r")
#: Maps of matrix notation: \operatorname{diag}, \mathrm{diag}, tril.
_MATRIX_MAPS = ("diag", "tril")
#: Indices that ``diag(...)`` binds to its diagonal when nothing else does.
_DIAG_INDICES = ("j", "a")
#: Divergences between two mixtures named by their subscript (``D_{var}``).
NAMED_DIVERGENCES = ("var", "varUB", "lower", "upper")
#: Component indices of the mixtures f, g (Hershey & Olsen's a, b; primed).
MIXTURE_INDICES = ("a", "b", "a'", "b'")
CONVENTIONAL, FIRST_FACTOR = "rest", "first"
#: The relation '=' with '+ const' on a side: equal up to a constant in z.
UP_TO_CONSTANT = "=+const"


class Parser:
    """Recursive-descent parser of one token sequence.

    ``variables`` are the symbols a density may take as arguments (latent and
    observed); ``latent`` is the latent symbol (a ``\\sum`` binds it);
    ``choices`` gives the reading of each ambiguous site, by order of
    appearance (default: conventional).
    """

    def __init__(self, tokens, variables=("z", "x"), latent="z", choices=(),
                 matrices=None, definitions=None):  # fmt: skip
        self.toks = list(tokens)
        # symbols the derivation defined in earlier displays (name ->
        # ``definitions.Definition``), read in matrix notation only
        self.definitions = definitions or {}
        # matrix notation (``matrices``: the symbols the settings bind, see
        # ``models.matrix_symbols``): x and z are column vectors, \| opens a
        # norm, \sum_{j=1}^{d} binds an entry index
        self.matrices = frozenset(matrices) if matrices is not None else None
        # density symbols the settings bind besides p and q (``f()``: the
        # mixtures f, g of ``mixture_pair``); their subscript is a component
        self.mixtures = frozenset(
            s[:-2] for s in self.matrices or () if s.endswith("()")
        )
        # component indices that may stand free besides j (``index:k``)
        self.free_indices = {"j"} | {
            s[6:] for s in self.matrices or () if s.startswith("index:")
        }
        self.norm_depth = 0
        self.top = False  # parsing a side of the chain at its top level
        self.sides = 0  # sides of the chain read so far
        self.constant_sides = set()  # sides that end in + const
        self.indices = set()
        self.i = 0
        self.variables = set(variables)
        self.latent = latent
        self.choices = tuple(choices)
        self.sites = []
        # sum index -> latent; the upper-case letters are the data set and its
        # latents (Bishop's p(X|theta), p(Z|X)): an identity of data-set
        # quantities that add over the data is checked datum by datum
        self.aliases = {v.upper(): v for v in (latent, *variables) if v.islower()}
        self.in_integral = 0
        self.dims = set()  # latent-dimension indices bound by \sum_j
        self.data_sums = 0  # depth of sums over the data
        self.version = ""  # the parameters' value named by a decoration
        self.counting = False  # K is the number of importance samples
        self.noise_names = ()  # a declared noise (\xi) in scope, ``integrands``

    # -- token helpers -------------------------------------------------------
    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at(self, text, k=0):
        t = self.peek(k)
        return t is not None and t.text == text

    def take(self):
        t = self.peek()
        if t is None:
            raise ir.Unsupported("the equation ends too early", None, self.last_line())
        self.i += 1
        return t

    def expect(self, text):
        t = self.peek()
        if t is None or t.text != text:
            got = "the end" if t is None else f"'{t.text}'"
            line = t.line if t is not None else self.last_line()
            raise ir.Unsupported(f"expected '{text}', found {got}", t, line)
        self.i += 1
        return t

    def last_line(self):
        return self.toks[-1].line if self.toks else None

    def unsupported(self, tok, what=None):
        text = str(tok) if tok is not None else "the end"
        msg = what or f"unsupported token '{text}'"
        return ir.Unsupported(msg, tok, tok.line if tok else self.last_line())

    def is_var(self, tok):
        return (
            tok is not None
            and tok.kind == "letter"
            and (tok.text in self.variables or tok.text in self.aliases)
        )

    def var_name(self, tok):
        return self.aliases.get(tok.text, tok.text)

    def at_differential(self):
        t, u = self.peek(), self.peek(1)
        return (
            self.in_integral > 0
            and t is not None
            and t.kind == "letter"
            and t.text == "d"
            and self.is_var(u)
        )

    def at_term_end(self):
        t = self.peek()
        if t is None or self.at_differential():
            return True
        if t.text == "||" and self.matrices is not None:
            return self.norm_depth > 0
        return (
            t.text in _CLOSERS
            or t.text in RELATIONS
            or t.text in _UNSUPPORTED_RELATIONS
            or t.text in ("+", "-")
            or bars.bar_length(self) > 0
        )

    # -- grammar -------------------------------------------------------------
    def chain(self):
        exprs, ops = [self.side()], []
        while self.peek() is not None:
            t = self.peek()
            if t.text in _UNSUPPORTED_RELATIONS:
                raise self.unsupported(t, f"unsupported relation '{t.text}'")
            if t.text not in RELATIONS:
                raise self.unsupported(t)
            self.take()
            ops.append(t)
            exprs.append(self.side())
        return exprs, ops

    def side(self):
        """One side of the chain: an expression, whose term ``+ \\text{const}``
        (a constant in the free latent) is recorded in ``constant_sides``."""
        self.top = True
        try:
            return self.expr()
        finally:
            self.top = False

    def expr(self):
        top, self.top = getattr(self, "top", False), False
        terms, signs = [], []
        sign = 1
        if self.at("+") or self.at("-"):
            sign = -1 if self.take().text == "-" else 1
        while True:
            if top and terms and self.at("const") and self.peek().kind == "name":
                self.take()  # + const: the side is known up to a constant
                self.constant_sides.add(self.sides)
            else:
                terms.append(self.term())
                signs.append(sign)
            if self.at("+") or self.at("-"):
                sign = -1 if self.take().text == "-" else 1
                continue
            break
        if top:
            self.sides += 1
        if len(terms) == 1 and signs[0] == 1:
            return terms[0]
        return ir.Add(tuple(terms), tuple(signs))

    def term(self):
        if self.at_term_end():
            raise self.unsupported(self.peek(), "a term is missing")
        return self.product()

    def product(self):
        """The factors up to the end of the term, as one node (None if none)."""
        factors = []
        while not self.at_term_end():
            if self.at("\\cdot"):
                self.take()
                continue
            if self.at("/") and factors:  # a / b: the product so far over b
                tok = self.take()
                if self.at_term_end():
                    raise self.unsupported(tok, "'/' has no denominator")
                num = factors[0] if len(factors) == 1 else ir.Mul(tuple(factors))
                factors = [ir.Div(num, self.power())]
                continue
            factors.extend(self.factor())
        if not factors:
            return None
        return factors[0] if len(factors) == 1 else ir.Mul(tuple(factors))

    def factor(self):
        """One factor, or the whole rest of the product for \\log and \\sum."""
        t = self.peek()
        if t.text in ("\\log", "\\ln", "\\exp"):
            self.take()
            wrap = ir.Exp if t.text == "\\exp" else ir.Log
            if self.at("(") or self.at("[") or self.at("\\{"):
                return [wrap(self.entries(self.bracketed()))]
            return self.applied(wrap, t)
        if t.text == "\\sum" and self.data_index():
            return [self.data_sum(t)]
        if t.text == "\\prod":
            if not self.data_index():
                raise self.unsupported(
                    t, "a product is read over the data: \\prod_{i=1}^{N} p(x_i)"
                )
            return [self.data_sum(t)]
        if t.text == "\\sum" and self.matrices is not None:
            return [self.index_sum(t)]
        if t.text in ("\\max", "max") and self.matrices is not None and self.at("_", 1):
            return [self.index_max(t)]
        if t.text == "\\sum":
            return [self.sum_over(t)]
        if (self.matrices is not None or labels.at_parameter(self, 1)) and (
            t.text == "\\det" or (t.kind == "name" and t.text in ("tr", "Tr"))
        ):
            self.take()
            wrap = ir.Det if t.text == "\\det" else ir.Trace
            return [wrap(self.bracketed() if self.at("(") else self.power())]
        if t.text == "\\nabla":
            return [self.gradient()]
        if self.matrices is not None and t.kind == "name" and t.text in _MATRIX_MAPS:
            return [self.matrix_map()]
        if self.matrices is not None and t.text == "\\max" and self.at("(", 1):
            return [self.entries(maximum(self))]
        if t.kind == "name" and t.text == "logsumexp" and self.at("_", 1):
            return [self.logsumexp()]
        return [self.power()]

    def matrix_map(self):
        """``\\operatorname{diag}(v)``, ``\\operatorname{tril}(A)`` in matrix
        notation. In ``diag(1 / L_{jj})`` an entry index that nothing else
        binds (j, a) ranges over the diagonal (``ir.Diag``)."""
        tok = self.take()
        if tok.text == "tril":
            arg = self.bracketed() if self.at("(") else self.power()
            return self.entries(ir.Tril(arg))
        free = [i for i in _DIAG_INDICES if i not in self.indices]
        self.indices.update(free)
        try:
            arg = self.bracketed() if self.at("(") else self.power()
        finally:
            self.indices.difference_update(free)
        used = {
            i
            for n in nodes(arg)
            if isinstance(n, ir.Elem)
            for i in n.indices
            if i in free
        }
        if len(used) > 1:
            raise self.unsupported(tok, "diag(...) over two indices")
        return self.entries(ir.Diag(arg, used.pop() if used else None))

    def logsumexp(self):
        """``\\operatorname{logsumexp}_k [body]``: log sum_k exp(body), the sum
        over the latent's values (``\\sum_k``) or, in matrix notation, over
        the components (``\\sum_j``)."""
        tok = self.take()
        self.take()  # '_'
        group = self.group_tokens()
        if len(group) != 1 or group[0].kind != "letter":
            raise self.unsupported(tok, "logsumexp_k takes one index")
        index = group[0].text
        if not (self.at("(") or self.at("[")):
            raise self.unsupported(tok, "logsumexp_k takes a bracketed argument")
        if self.matrices is not None:
            self.indices.add(index)
            body = self.bracketed()
            self.indices.discard(index)
            return ir.Log(ir.IndexSum(ir.Exp(body), index, None))
        if not labels.is_label(self, index) and index != self.latent:
            raise self.unsupported(
                tok, f"logsumexp_{index}: the sum is over the latent's values k"
            )
        self.aliases[index] = self.latent
        body = self.bracketed()
        self.aliases.pop(index, None)
        return ir.Log(ir.Sum(ir.Exp(body), self.latent, index))

    def gradient(self):
        """``\\nabla_\\theta`` (the model's parameters) or ``\\nabla_\\phi``
        (q's) applied to the rest of the product."""
        tok = self.take()
        group = ""
        if self.at("_"):
            self.take()
            group = "".join(g.text for g in self.group_tokens()).lstrip("\\")
        group = {"varphi": "phi", "vartheta": "theta", "": "all",
                 "m,L": "phi"}.get(group, group)  # fmt: skip
        if group not in ("theta", "phi", "all"):
            raise self.unsupported(
                tok,
                "a gradient is taken in \\theta or \\phi: \\nabla_\\theta, "
                "\\nabla_\\phi",
            )
        body = self.product()
        if body is None:
            raise self.unsupported(tok, "the gradient has no argument")
        n = bars.bar_length(self)
        self.i += n  # \big|_{q = p(z|x)}: the gradient at the exact posterior
        return ir.AtExactQ(ir.Grad(group, body)) if n else ir.Grad(group, body)

    def partial(self):
        """``\\frac{\\partial}{\\partial \\mu} body`` (the rest of the
        product) or ``\\frac{\\partial body}{\\partial \\mu}``: the
        derivative in q's mean or standard deviation (``\\mu``, ``\\sigma``)
        or along the model's or q's parameters (``\\theta``, ``\\phi``), read
        as ``\\nabla`` is (``ir.Grad``)."""
        tok = self.take()
        self.take()  # '{'
        self.take()  # '\\partial'
        body = None if self.at("}") else self.expr()
        self.expect("}")
        self.expect("{")
        self.expect("\\partial")
        below = self.group_rest()
        family = self.entry_parameter(below)
        if family is not None:
            return ir.EntryGrad(*family, body or self.derivand(tok))
        if _joint_denominator([t.text for t in below], self.latent):
            return ir.JointGrad(body or self.derivand(tok))
        matrix, entry = self.matrix_parameter(below) or (None, ())
        if matrix is not None:
            self.indices.update(entry)  # free: the line holds at each entry
            if body is None:
                body = self.product() or self.referent(tok)
            return ir.MatGrad(matrix, body, entry)
        var = below[0]
        group = {"\\mu": "mu", "\\sigma": "sigma", "\\theta": "theta",
                 "\\phi": "phi", "\\varphi": "phi"}.get(var.text)  # fmt: skip
        if group is None or len(below) != 1:
            raise self.unsupported(
                var,
                f"a derivative in {''.join(t.text for t in below)}: derivatives "
                "are taken in q's \\mu, \\sigma, in \\theta, \\phi, in a "
                "parameter the setting moves in matrix notation (gaussian: "
                "\\mu_p, L_p, \\mu_q, L_q; linear_gaussian: W, \\mu, \\psi, "
                "m_q, L_q), in one entry of those (\\psi_j, \\mu_{p,j}), in a "
                "datum x_i, or in a logit \\eta_j (categorical)",
            )
        return ir.Grad(group, body or self.derivand(tok))

    def derivand(self, tok):
        """The rest of the product after ``\\frac{\\partial}{\\partial v}``."""
        body = self.product()
        if body is None:
            found = self.definitions.get("\\partial")
            why = f" ({found.error})" if found is not None and found.error else ""
            raise self.unsupported(tok, f"the derivative has no argument{why}")
        return body

    def referent(self, tok):
        """The quantity a derivative written without an argument
        differentiates (``upstream.Referent``), or unsupported."""
        found = self.definitions.get("\\partial")
        if found is None:
            raise self.unsupported(
                tok,
                "the derivative has no argument, and the text names no quantity "
                "it differentiates",
            )
        return found.use("\\partial", None)

    def group_rest(self):
        """The tokens up to the '}' that closes the group we are in (taken)."""
        out, depth = [], 0
        while True:
            t = self.take()
            if t.text == "{":
                depth += 1
            elif t.text == "}":
                if depth == 0:
                    return out
                depth -= 1
            out.append(t)

    def entry_parameter(self, below):
        """(family, index) of a derivative in one entry of a parameter family
        the settings bind (``\\partial \\eta_j``, ``\\partial \\eta^q_j``),
        or None."""
        if self.matrices is None:
            return None
        texts = [t.text for t in below if t.text not in ("{", "}")]
        if len(texts) == 5 and texts[1] == "^" and texts[3] == "_":
            name, index = f"{texts[0]}^{texts[2]}", texts[4]
        elif len(texts) == 3 and texts[1] == "_":
            name, index = texts[0], texts[2]
        else:
            return None
        if f"moves:{name}" not in self.matrices:  # a family the setting moves
            return None
        if index not in self.free_indices | self.indices:
            return None
        return name, index

    def matrix_parameter(self, below):
        """(the matrix-notation symbol a derivative is taken in, the entry
        indices of an elementwise one) -- ``\\partial W``, ``\\partial L_q``,
        ``\\partial \\mu_p``; ``\\partial \\psi_j``, ``\\partial \\mu_{p,j}``,
        ``\\partial x_{ij}`` (entry j) -- or None."""
        if self.matrices is None or not below:
            return None
        texts = [t.text for t in below]
        entry = _entry_subscript(texts)
        if entry is not None:
            name, index = entry
            found = self.matrix_parameter([t for t in below if t.text in name])
            if found is not None and not found[1]:
                return found[0], (index,)
            return None
        if len(texts) == 1:
            name = texts[0]
        elif len(texts) >= 3 and texts[1] == "_":
            sub = [t for t in texts[2:] if t not in ("{", "}")]
            name = f"{texts[0]}_{''.join(sub)}"
        else:
            return None
        if name in (f"{v}_{i}" for v in self.variables - {self.latent}
                    for i in DATA_INDICES):  # fmt: skip
            return name, ()  # x_i: the datum, moved one by one (``derivatives``)
        return (name, ()) if name in self.matrices else None

    def applied(self, wrap, tok):
        """``\\log`` without brackets: the rest of the product (see module doc)."""
        args, start = [], self.i
        while not self.at_term_end() and not self.at("\\cdot"):
            args.extend(self.factor())
        if not args:
            raise self.unsupported(tok, f"'{tok.text}' has no argument")
        if len(args) == 1:
            return [wrap(args[0])]
        site = len(self.sites)
        name = tok.text.lstrip("\\")
        rest = " * ".join(ir.describe(a) for a in args[1:])
        whole = f"{name}[{ir.describe(ir.Mul(tuple(args)))}]"
        first = f"{name}[{ir.describe(args[0])}] * {rest}"
        # A fraction right after the log is a delimited group, as a bracket is:
        # \log \frac{a}{b} c reads log(a/b) * c first.
        frac_first = self.toks[start].text == "\\frac"
        self.sites.append(
            (tok.line, first, whole) if frac_first else (tok.line, whole, first)
        )
        choice = self.choices[site] if site < len(self.choices) else CONVENTIONAL
        if (choice == CONVENTIONAL) != frac_first:
            return [wrap(ir.Mul(tuple(args)))]
        return [wrap(args[0]), *args[1:]]

    def data_index(self):
        """The index of a ``\\sum`` or ``\\prod`` over the data (any index
        with the upper limit ``N`` or ``n``; ``_i``, ``_n`` without a limit),
        or None."""
        if not self.at("_", 1):
            return None
        j = self.i + 2
        if self.at("{", 2):
            depth, group = 0, []
            while j < len(self.toks):
                t = self.toks[j]
                depth += {"{": 1, "}": -1}.get(t.text, 0)
                j += 1
                if depth == 0:
                    break
                group.append(t)
            group = group[1:]
        else:
            group = self.toks[j : j + 1]
            j += 1
        letters = [g.text for g in group if g.kind == "letter"]
        if not letters:
            return None
        upper = None
        if j < len(self.toks) and self.toks[j].text == "^" and j + 1 < len(self.toks):
            nxt = self.toks[j + 1]
            upper = (
                self.toks[j + 2].text
                if nxt.text == "{" and j + 2 < len(self.toks)
                else nxt.text
            )
        if upper in DATA_COUNTS or (upper is None and letters[0] in DATA_INDICES):
            return letters[0]
        return None

    def data_sum(self, tok):
        """``\\sum_{i=1}^{N} body`` or ``\\prod_i body`` over the data
        (``ir.DataSum``); the body is the rest of the product, in which x_i
        (``x^{(i)}``, z_i) is the datum's x (its latent)."""
        index = self.data_index()
        self.take()
        self.take()  # '_'
        letters = [g.text for g in self.group_tokens() if g.kind == "letter"]
        if self.at("^"):
            self.take()
            self.group_tokens()
        # \sum_{ik}: over the data and the values k of the latent
        label = letters[1] if len(letters) == 2 and tok.text == "\\sum" else None
        if label is not None and not labels.is_label(self, label):
            raise self.unsupported(
                tok,
                f"\\sum_{{{''.join(letters)}}}: a double sum "
                "is over the data and the values k of the latent",
            )
        if label is not None:
            self.aliases[label] = self.latent
        self.data_sums += 1
        body = self.product()
        self.data_sums -= 1
        if body is None:
            raise self.unsupported(tok, f"{tok.text} has no summand")
        if label is not None:
            self.aliases.pop(label, None)
            body = ir.Sum(body, self.latent, label)
        return ir.DataSum(body, index, tok.text == "\\prod")

    def sum_over(self, tok):
        self.take()
        self.expect("_")
        group = self.group_tokens()
        letters = [g for g in group if g.kind == "letter"]
        if not letters:
            raise self.unsupported(tok, "\\sum needs an index")
        index = letters[0].text
        if self.at("^"):
            self.take()
            self.group_tokens()
        if index == "j":  # the latent dimensions: \sum_{j=1}^{J}
            self.dims.add(index)
            body = self.product()
            self.dims.discard(index)
            if body is None:
                raise self.unsupported(tok, "\\sum has no summand")
            return ir.DimSum(body, index)
        if index not in (self.latent, self.latent.upper(), "k", "c"):
            raise self.unsupported(
                letters[0],
                f"a sum over data, samples or dimensions (\\sum_{index}) "
                "is not supported; a sum over the values of a discrete latent is "
                f"written \\sum_{self.latent} or \\sum_k",
            )
        if index not in self.variables or index == self.latent:
            self.aliases[index] = self.latent
        elif index != self.latent:
            raise self.unsupported(
                letters[0], f"\\sum over the observed variable '{index}'"
            )
        body = self.product()
        if body is None:
            raise self.unsupported(tok, "\\sum has no summand")
        self.aliases.pop(index, None)
        return ir.Sum(body, self.latent, index)

    def index_sum(self, tok):
        """``\\sum_{j=1}^{d} body`` in matrix notation (``ir.IndexSum``): j
        indexes entries (``\\psi_j``, ``(L_M)_{aa}``); without an upper
        bound its range is that of the entries it picks."""
        self.take()
        self.expect("_")
        group = self.group_tokens()
        if not group or group[0].kind != "letter" or group[0].text == self.latent:
            raise self.unsupported(tok, "\\sum in matrix notation needs an index")
        lower = None
        if (
            len(group) > 2
            and group[1].text == "="
            and [g.text for g in group[2:]] != ["1"]
        ):
            lower = self.sum_start(tok, group[2:])
        elif len(group) > 1 and [g.text for g in group[1:]] not in (["=", "1"], ["'"]):
            raise self.unsupported(tok, "an index sum starts at 1: \\sum_{j=1}^{d}")
        index, upper = group[0].text, None
        if [g.text for g in group[1:]] == ["'"]:  # \sum_{a'}
            index, group = index + "'", group[:1]
        if self.at("^"):
            self.take()
            bound = self.group_tokens()
            if len(bound) != 1:
                raise self.unsupported(tok, "an index sum ends at d, k or a number")
            b = bound[0]
            if b.kind == "num" and b.text.isdigit():
                upper = ir.Number(float(b.text))
            elif b.text in self.matrices:
                upper = ir.Sym(b.text)
            else:
                raise self.unsupported(b, "an index sum ends at d, k or a number")
        self.indices.add(index)
        body = self.product()
        self.indices.discard(index)
        if body is None:
            raise self.unsupported(tok, "\\sum has no summand")
        return ir.IndexSum(body, index, upper, lower)

    def sum_start(self, tok, tokens):
        """The first value of an index sum written ``\\sum_{j=k+1}^{d}``:
        an expression in the dimensions and numbers (``ir.IndexSum.lower``)."""
        inner = Parser(tokens, tuple(self.variables), self.latent, (), self.matrices)
        start = inner.expr()
        if inner.peek() is not None or not all(
            isinstance(n, ir.Sym | ir.Number | ir.Add) for n in nodes(start)
        ):
            raise self.unsupported(tok, "an index sum starts at a number or k + 1")
        return start

    def index_max(self, tok):
        """``\\max_k body`` in matrix notation (``ir.IndexMax``): the largest
        entry (component) over the range of the index, body one factor."""
        self.take()
        self.take()  # '_'
        group = self.group_tokens()
        if len(group) != 1 or group[0].kind != "letter" or self.is_var(group[0]):
            raise self.unsupported(tok, "\\max_k takes one entry index")
        index = group[0].text
        self.indices.add(index)
        try:
            body = self.bracketed() if self.at("(") else self.power()
        finally:
            self.indices.discard(index)
        return ir.IndexMax(body, index)

    def matrix_exponent(self, base):
        """``^\\top``, ``^T``, ``^{-\\top}``, ``^{-1}``, ``^{-1/2}``, ``^2`` on a
        matrix-notation factor, or None to read the exponent as usual."""
        start = self.i
        self.take()  # '^'
        texts = [t.text for t in self.group_tokens()]
        if texts in (["\\top"], ["T"], ["\\intercal"]):
            return ir.Transpose(base)
        if texts in (["-", "\\top"], ["-", "T"]):
            return ir.Transpose(ir.Pow(base, ir.Number(-1.0)))
        rational = "".join(texts)
        if re_rational(rational):
            num, _, den = rational.partition("/")
            return ir.Pow(base, ir.Number(float(num) / float(den or 1)))
        self.i = start
        return None

    def entries(self, base):
        """``A_{ja}`` with indices bound by an index sum (``ir.Elem``)."""
        if not (self.matrices is not None and self.at("_")):
            return base
        start = self.i
        self.take()
        group = self.group_tokens()
        idx = tuple(g.text for g in group if g.text != ",")
        if idx and all(i in self.indices or i in FREE_ENTRIES for i in idx):
            return ir.Elem(base, idx)
        self.i = start
        return base

    def power(self):
        base = self.entries(self.atom())
        if self.at("^") and (self.matrices is not None or labels.is_matrix(base)):
            read = self.matrix_exponent(base)
            if read is not None:
                return self.entries(read)
        if self.at("^"):
            self.take()
            if self.at("{"):
                self.take()
                exponent = self.expr()
                self.expect("}")
            else:
                t = self.take()
                if t.kind != "num":
                    raise self.unsupported(t, f"unsupported exponent '{t.text}'")
                exponent = ir.Number(float(t.text))
            base = ir.Pow(base, exponent)
        if self.at("_"):
            raise self.unsupported(self.peek(), "unsupported subscript")
        return base

    def bracketed(self):
        open_ = self.take()
        close = _OPEN_BRACES[open_.text]
        inner = self.expr()
        self.expect(close)
        return inner

    def frac_argument(self):
        """A ``\\frac`` argument: ``{expr}``, or one digit or letter
        (``\\frac12``, ``\\frac1N``)."""
        if self.at("{"):
            self.take()
            inner = self.expr()
            self.expect("}")
            return inner
        t = self.peek()
        if t is not None and t.kind == "num" and t.text.isdigit():
            self.take()
            if len(t.text) > 1:  # \frac12: the digits are two arguments
                rest = type(t)("num", t.text[1:], t.line)
                self.toks.insert(self.i, rest)
            return ir.Number(float(t.text[0]))
        return self.atom()

    def sample_mean_prefix(self):
        """The number of tokens of ``\\frac{1}{L}`` (or ``\\frac1L``) when a
        ``\\sum`` follows it, else 0: the start of a Monte Carlo average."""
        texts = [t.text if t is not None else None for t in
                 (self.peek(k) for k in range(1, 8))]  # fmt: skip
        if texts[:6] == ["{", "1", "}", "{", texts[4], "}"] and texts[6] == "\\sum":
            letter = self.peek(5)
            n = 7
        elif texts[0] == "1" and texts[2] == "\\sum":
            letter, n = self.peek(2), 3
        else:
            return 0
        if letter.kind != "letter" or not letter.text.isupper() or letter.text == "N":
            return 0  # \frac{1}{N}\sum_i: the mean over the data
        return n

    def data_mean_prefix(self):
        """The number of tokens of ``\\frac{1}{N}`` (``\\frac1N``) when a sum
        over the data follows it, else 0."""
        texts = [t.text if t is not None else None for t in
                 (self.peek(k) for k in range(8))]  # fmt: skip
        if texts[:7] == ["\\frac", "{", "1", "}", "{", "N", "}"]:
            n = 7
        elif texts[:3] == ["\\frac", "1", "N"]:
            n = 3
        else:
            return 0
        if texts[n] != "\\sum":
            return 0
        self.i += n
        try:
            return n if self.data_index() else 0
        finally:
            self.i -= n

    def sample_mean(self):
        """``\\frac{1}{L} \\sum_{l=1}^{L} body``: the Monte Carlo average of
        body over draws z^{(l)} of the declared q(z|x) (``ir.SampleMean``)."""
        first = self.peek()
        n = self.sample_mean_prefix()
        count = self.toks[self.i + (n - 2 if n == 7 else n - 1)].text  # L of 1/L
        self.i += n
        tok = self.take()  # \sum
        if not self.at("_"):
            raise self.unsupported(tok, "\\sum needs an index")
        self.take()
        group = self.group_tokens()
        upper = []
        if self.at("^"):
            self.take()
            upper = [u.text for u in self.group_tokens()]
        if not group or group[0].kind != "letter" or upper != [count]:
            raise self.unsupported(
                first,
                f"a Monte Carlo average is written \\frac{{1}}{{{count}}}"
                f"\\sum_{{l=1}}^{{{count}}} f(z^{{(l)}})",
            )
        body = self.product()
        if body is None:
            raise self.unsupported(tok, "\\sum has no summand")
        return ir.SampleMean(body, noise.average_var(body, self), count)

    def skip_index(self):
        """Skip a data or sample index on a variable: ``x_i``, ``x_{n}``,
        ``x^{(i)}``, ``z^{(l)}`` (the instance's data are the x_i)."""
        while True:
            if self.at("_"):
                self.take()
                self.group_tokens()
            elif self.at("^") and self.at("{", 1) and self.at("(", 2):
                self.take()
                self.group_tokens()
            else:
                return

    def skip_data_index(self):
        """Skip ``_i`` (``_n``, ``_{i}``): the datum a per-datum quantity
        belongs to (the instance's data are the x_i)."""
        if self.at("_") and self.peek(1) is not None:
            nxt = self.peek(1)
            if nxt.text in DATA_INDICES:
                self.i += 2
            elif nxt.text == "{" and self.at("}", 3):
                self.i += 4 if self.peek(2).text in DATA_INDICES else 0

    def group_tokens(self):
        """The tokens of a ``{...}`` group, or a single token."""
        if not self.at("{"):
            return [self.take()]
        self.take()
        depth, out = 1, []
        while True:
            t = self.take()
            if t.text == "{":
                depth += 1
            elif t.text == "}":
                depth -= 1
                if depth == 0:
                    return out
            out.append(t)

    def matrix_atom(self):
        """A norm, a vector x or z, or a symbol the settings bind; None if
        the token starts none of them."""
        t = self.peek()
        if t.text == "||" and self.norm_depth == 0:
            self.take()
            self.norm_depth += 1
            inner = self.expr()
            self.norm_depth -= 1
            self.expect("||")
            if self.at("_") and (self.at("F", 1) or self.at("2", 1)):
                self.take()
                self.take()
            return ir.Norm(inner)
        if self.is_var(t) and self.var_name(t) == t.text:
            self.take()
            start = self.i
            self.skip_index()
            written = self.toks[start : self.i] if self.at("_", start - self.i) else []
            sub = [u.text for u in written if u.kind == "letter"]
            return ir.VecVar(t.text, "".join(sub))
        defined = self.defined_indexed(t)
        if defined is not None:
            return defined
        family = self.component(t) or self.component_posterior(t)
        if family is not None:
            return family
        name, end, idx = t.text, self.i + 1, ()
        if self.at("_", 1):
            save = self.i
            self.i += 2
            texts = [g.text for g in self.group_tokens()]
            if "," in texts:  # L_{q,jj}: the symbol L_q at entry (j, j)
                k = texts.index(",")
                texts, idx = texts[:k], tuple(c for c in texts[k + 1 :] if c != ",")
                if not idx or not all(i in self.indices for i in idx):
                    self.i = save
                    return None
            whole = f"{t.text}_{''.join(texts)}"
            bound = all(c in self.indices for c in texts) and not idx
            if whole in self.definitions or (  # t_{ab} defined with a, b
                not bound and not reads_as_entry(self, t.text, texts, idx)
            ):
                name, end = whole, self.i
            if (
                texts in (["i"], ["n"])
                and name not in self.matrices
                and t.text in PER_DATUM_SYMBOLS
                and t.text in self.matrices
            ):  # m_i: the per-datum m at the datum x_i, as x_i is x
                name = t.text
            if (
                len(texts) == 2
                and texts[0] in DATA_INDICES
                and texts[1] in self.indices
                and t.text in PER_DATUM_SYMBOLS
                and t.text in self.matrices
            ):  # b_{ij}: entry j of the datum's b
                name, idx, end = t.text, (texts[1],), self.i
            self.i = save
        if name in self.definitions:
            self.i = end
            node = self.definitions[name].use(name, None)
            return ir.Elem(node, idx) if idx else node
        if name not in self.matrices:
            return self.cholesky_factor(t)
        self.i = end
        return ir.Elem(ir.Sym(name), idx) if idx else ir.Sym(name)

    def cholesky_factor(self, t):
        """``L_{G_j}``, ``L_{A}``: the lower Cholesky factor (``ir.Chol``) of a
        symbol the derivation defined or of a family the settings bind, when
        the settings bind no ``L_A`` of their own; else None."""
        if t.text != "L" or not self.at("_", 1) or not self.at("{", 2):
            return None
        save = self.i
        self.i += 2
        inner = [g.text for g in self.group_tokens()]
        comp = self.free_indices | self.indices
        node = None
        if len(inner) == 3 and inner[1] == "_" and inner[2] in comp:
            head, index = inner[0], inner[2]
            if f"{head}[]" in self.definitions:
                node = self.definitions[f"{head}[]"].use(head, index)
            elif f"{head}[]" in self.matrices:
                node = ir.Comp(head, index)
        elif len(inner) == 1 and inner[0] in self.definitions:
            node = self.definitions[inner[0]].use(inner[0], None)
        if node is None:
            self.i = save
            return None
        return ir.Chol(node)

    def defined_indexed(self, t):
        """``\\rho_j`` of a definition ``\\rho_j = ...`` made with an index:
        its right side with the definition's index renamed to j."""
        key = f"{t.text}[]"
        if key not in self.definitions or not self.at("_", 1):
            return None
        save = self.i
        self.i += 2
        group = self.group_tokens()
        if len(group) != 1 or group[0].kind != "letter":
            self.i = save
            return None
        return self.definitions[key].use(t.text, group[0].text)

    def component_posterior(self, t):
        """``P(j | x)``: the posterior probability of component j given the
        datum (``ir.Comp`` of the family ``P``), or None."""
        texts = [u.text if u is not None else None for u in
                 (self.peek(k) for k in range(6))]  # fmt: skip
        comp = {"j"} | self.indices
        if (texts[0] != "P" or texts[1] != "(" or texts[2] not in comp
                or texts[3] != "|" or not self.is_var(self.peek(4))
                or texts[5] != ")" or "P[]" not in self.matrices):  # fmt: skip
            return None
        self.i += 6
        return ir.Comp("P", texts[2])

    def component_density(self, vars_, given, index):
        """``p(z | j)``, ``p(z | x, j)``: the density of z given component j
        of a mixture prior, N(z; a_j, B_j), and given also the datum, the
        posterior's N(z; m_j, S_j) (``ir.Normal`` of the families)."""
        if vars_ != [self.latent] or given not in ([], [self.observed_name()]):
            raise self.unsupported(
                self.peek(), "a component j conditions p(z | j) or p(z | x, j)"
            )
        mean, cov = ("a", "B") if not given else ("m", "S")
        return ir.Normal(self.latent, ir.Comp(mean, index), ir.Comp(cov, index))

    def component(self, t):
        """``a_j``, ``B_j``, ``L_{B_j}``, ``\\eta^p_j`` of a family the
        settings bind (``"a[]"`` in ``matrices``): ``ir.Comp``; the Kronecker
        delta ``\\delta_{jk}`` of two component indices; or None."""
        save = self.i
        head = t.text
        if self.at("^", 1) and self.at("_", 3) and self.peek(2).kind == "letter":
            head = f"{t.text}^{self.peek(2).text}"  # \eta^p_j: the family eta^p
            self.i += 2
        if not self.at("_", 1) or (head != t.text and f"{head}[]" not in self.matrices):
            self.i = save
            return None
        self.i += 2
        group = [g.text for g in self.group_tokens()]
        if len(group) == 2 and group[1] == "'":  # a primed index: \pi_{a'}
            group = [group[0] + "'"]
        name = None
        # a component index: j (k too where the settings allow it), or one a
        # sum binds
        comp = self.free_indices | self.indices
        if self.mixtures:
            comp |= set(MIXTURE_INDICES)
        if t.text == "\\delta" and len(group) == 2 and set(group) <= comp:
            return ir.Kronecker(tuple(group))
        if len(group) == 1 and group[0] in comp:
            name, index = head, group[0]
        elif len(group) == 3 and group[1] == "_" and group[2] in comp:
            name, index = f"{t.text}_{group[0]}", group[2]
        if name is None or f"{name}[]" not in self.matrices:
            self.i = save
            return None
        return ir.Comp(name, index)

    def atom(self):
        t = self.peek()
        node = estimators.estimate_atom(self)  # before a symbol of that name
        if node is not None:
            return node
        if self.matrices is not None and t is not None:
            node = self.matrix_atom()
            if node is not None:
                return node
        # component notation of a discrete latent's values, unless k is an
        # entry index of the settings' families (the categorical's)
        node = labels.label_atom(self) if "k" not in self.free_indices else None
        if node is not None:
            return node
        if t.kind == "num":
            self.take()
            return ir.Number(float(t.text))
        if t.text in ("(", "[", "{", "\\{"):
            return self.bracketed()
        if t.text == "\\langle":
            return self.angle_expectation()
        if t.text == "\\cases":
            raise self.unsupported(
                t,
                "a piecewise definition (cases) is not checked; write each "
                "case as its own display",
            )
        if t.text == "\\condition":
            raise self.unsupported(
                t,
                "a line under a condition (\\quad (...) with a relation or "
                "'if') is not checked: lines are checked at every instance; "
                "write the line without its condition if it holds everywhere",
            )
        if t.text == "\\pi":
            self.take()
            return ir.Const("pi")
        if t.text == "\\frac" and self.at("{", 1) and self.at("\\partial", 2):
            return self.partial()
        if t.text == "\\frac" and self.data_mean_prefix():
            self.i += self.data_mean_prefix()
            total = self.data_sum(self.peek())
            if total.product:
                raise self.unsupported(t, "\\frac{1}{N} before a product")
            return ir.DataMean(total.body, total.index)
        if t.text == "\\frac" and self.sample_mean_prefix():
            return self.sample_mean()
        if t.text == "\\frac":
            self.take()
            num = self.frac_argument()
            den = self.frac_argument()
            return ir.Div(num, den)
        if t.text == "\\int":
            return self.integral()
        if t.text == "mathbb:E" or (
            t.text == "E" and (self.at("_", 1) or self.at("[", 1))
        ):
            return self.expectation()
        if t.kind == "letter" and (t.text in ("p", "q") or t.text in self.mixtures):
            return self.density()
        if self.skip_hat_q():
            return self.density()
        if t.kind == "letter" and t.text == "D" and self.at("(", 1):
            self.take()  # D(p \| q): the KL divergence
            return self.kl_arguments(t)
        if t.text == "mathcal:N" and self.at("(", 1):
            return self.normal()
        if t.kind == "letter" and t.text == "D" and self.at("_", 1):
            return self.kl()
        if t.text in _KL_NAMES:
            self.take()
            return self.kl_arguments(t)
        if t.text in _ENTROPY_NAMES and (self.at("[", 1) or self.at("(", 1)):
            self.take()
            return self.entropy()
        if t.text == "H" and "bare:H" in (self.matrices or ()):
            self.take()  # the setting's H[p]
            return ir.Entropy(ir.Density("p", None, ()))
        if t.text in _ELBO_NAMES or (t.kind == "letter" and t.text == "F"):
            return self.elbo()
        if (
            t.kind == "letter"
            and t.text == "I"
            and (self.at("(", 1) or self.at("_", 1))
        ):
            return self.mutual_information()
        if t.kind == "name" and t.text == "Cov":
            self.take()
            moment = self.component_moment(t, "Cov")
            if moment is None:
                raise self.unsupported(
                    t,
                    "a covariance is read of x given a component: "
                    "\\operatorname{Cov}[x \\mid j] (the mixture_prior setting)",
                )
            return moment
        if t.text in ("\\mu", "\\sigma"):
            return self.parameter()
        if t.kind == "letter" and t.text == "J":
            self.take()
            return ir.Dim()
        if t.kind == "letter" and (
            t.text == "N" or (t.text == "n" and t.text not in self.variables)
        ):
            self.take()
            return ir.DataCount()
        if t.kind == "letter" and t.text == "K":  # of samples, or of components
            self.take()
            return ir.SampleCount() if self.counting else ir.LabelCount()
        if t.text in ("Q", "mathcal:Q") and self.at("(", 1):
            return self.q_function()
        if t.kind == "letter" and t.text == "g" and self.at("_", 1):
            return self.reparam_map()
        if t.kind == "letter" and t.text in FUNCTION_NAMES and self.at("(", 1):
            return self.function()
        if self.is_var(t):
            self.take()
            self.skip_index()
            return ir.Var(self.var_name(t))
        if t.kind == "letter" and t.text == "e":
            self.take()
            return ir.Const("e")
        raise self.unsupported(t)

    def function(self):
        """``f(arg)`` of an abstract function: the argument is an expression,
        the latent, or the reparameterized latent ``\\mu + \\sigma \\odot
        \\epsilon`` (also ``\\mu + \\sigma \\epsilon``; ``m_q + L_q \\xi``
        at a declared noise, ``integrands.reparam_shape``)."""
        tok = self.take()
        self.expect("(")
        texts = []
        j = self.i
        while j < len(self.toks) and self.toks[j].text != ")":
            texts.append(self.toks[j].text)
            j += 1
        shape = [t for t in texts if t != "\\odot"]
        arg = integrands.reparam_shape(shape, self.noise_names)
        if arg is not None:
            self.i = j
        else:
            arg = self.expr()
        self.expect(")")
        return ir.Func(tok.text, arg)

    def reparam_map(self):
        """``g_\\phi(\\epsilon)``: q's reparameterization m + L epsilon."""
        tok = self.take()
        deco = self.decoration()
        if deco not in ("phi", "varphi") or not self.at("("):
            raise self.unsupported(
                tok, "g_\\phi(\\epsilon) is the reparameterization of q(z|x)"
            )
        self.take()
        if self.peek() is None or self.peek().text not in NOISE_TOKENS:
            raise self.unsupported(tok, "g_\\phi takes the noise \\epsilon")
        self.take()
        self.expect(")")
        return ir.Reparam()

    def decoration(self):
        """The subscript of p_\\theta, q_{\\phi}, p_{data}: its text, or ''.
        The model's parameters at another value (``p_{\\theta^{old}}``,
        ``p_{\\theta'}``) are left in ``self.version``."""
        if not self.at("_"):
            return ""
        self.take()
        group = self.group_tokens()
        if group and group[0].text in _MODEL_PARAMETERS and len(group) > 1:
            sub = Parser(group, self.variables, self.latent)
            sub.take()
            self.version = sub.parameter_version(group[0])
            if sub.peek() is not None:
                raise self.unsupported(sub.peek(), "unsupported decoration")
            return group[0].text.lstrip("\\")
        parts = []
        for g in group:
            if g.kind == "cmd" and g.text not in _GREEK:
                raise self.unsupported(g, f"unsupported decoration '{g.text}'")
            parts.append(g.text.lstrip("\\"))
        return "".join(parts)

    def parameter_version(self, tok):
        """The value of the model's parameters named by what follows ``tok``
        (\\theta): '' (theta itself), 'old' (``^{old}``, ``^{(t)}``, ``_{old}``,
        ``_t``) or 'new' (``^{new}``, ``^{(t+1)}``, ``_{t+1}``, ``'``)."""
        if self.at("'"):
            self.take()
            if self.at("'"):  # theta'': a second M-step (from a restricted q)
                self.take()
                return "vnew"
            return "new"
        if not (self.at("^") or self.at("_")):
            return ""
        self.take()
        text = "".join(g.text for g in self.group_tokens()).replace(" ", "")
        version = PARAMETER_VERSIONS.get(text.strip("()"))
        if version is None:
            raise self.unsupported(
                tok,
                f"{tok.text} at '{text}': the model's parameters are read at "
                "\\theta, \\theta^{old} (\\theta^{(t)}) and \\theta^{new} "
                "(\\theta^{(t+1)}, \\theta')",
            )
        return version

    def density(self):
        tok = self.take()
        sym = tok.text
        deco = self.decoration()
        if sym in self.mixtures:
            return self.mixture_density(sym, deco)
        if sym == "q" and self.optimal_mark():
            deco = "opt"  # q^*: the optimal factor, the exact posterior
            self.skip_data_index()  # q^*_i: the datum's
        labelled = deco and labels.is_label(self, deco[-1])
        if not self.at("(") or labelled:  # q_{ik}: q(z = k | x_i), a number
            # (a bare p is a density only in the gaussian setting)
            return ir.Density(sym, None, (), deco)
        open_ = self.take()
        vars_, given, part = [], [], None
        part, index = vars_, None
        dataset = False
        version, self.version = self.version, ""
        reparam = None
        while not self.at(")"):
            count, at = noise.reparam_at(self)
            if count and part is not None and reparam is None:
                self.i += count  # the latent at m + sigma * epsilon
                part.append(self.latent)
                reparam = at
                continue
            t = self.take()
            if t.text in (",",):
                continue
            if t.text == "|":
                if part is given:
                    raise self.unsupported(t, "two '|' in one density")
                part = given
                continue
            if t.text == ";":  # parameters after ';' are not variables
                part = None
                continue
            if t.text in _MODEL_PARAMETERS:
                version = self.parameter_version(t) or version
                continue
            if part is None:
                raise self.unsupported(
                    t, f"'{t.text}' after ';' is not a parameter of the model"
                )
            if t.text in NOISE_TOKENS and sym == "p" and not given:
                part.append(ir.NOISE)  # p(\epsilon): the standard normal noise
                continue
            prior = self.matrices is not None and "m[]" in self.matrices
            if part is given and prior and t.text in {"j"} | self.indices:
                index = t.text  # p(z | x, j): given a component of the prior
                continue
            if not self.is_var(t):
                raise self.unsupported(
                    t, f"'{t.text}' is not a declared variable (in {sym}(...))"
                )
            part.append(self.var_name(t))
            dataset = dataset or self.is_data_set_letter(t)
            self.skip_index()
            self.label_value(t)
        self.expect(")")
        if index is not None and sym == "p":
            return self.component_density(vars_, given, index)
        if not vars_:
            raise self.unsupported(open_, f"{sym}(...) has no variable before '|'")
        if set(vars_) & set(given):
            raise self.unsupported(open_, "a variable both before and after '|'")
        out = ir.Density(sym, tuple(vars_), tuple(given), deco, dataset, version)
        return out if reparam is None else ir.AtNoise(out, reparam)

    def mixture_density(self, sym, index):
        """``f(x)``, ``f_a(x)``, bare ``g_b``: a mixture the settings bind or
        its component ``index`` (``ir.Density.index``), of one variable."""
        if not self.at("("):
            return ir.Density(sym, None, (), index=index)
        self.take()
        t = self.take()
        if not self.is_var(t):
            raise self.unsupported(t, f"'{t.text}' is not a declared variable")
        self.skip_index()
        self.expect(")")
        return ir.Density(sym, (self.var_name(t),), (), index=index)

    def label_value(self, var):
        """Take ``= k`` after the latent in a density (``p(x | z = k)``): k
        names the latent's value (``labels.py``), free or bound by a sum."""
        letter = self.peek(1)
        if (
            self.var_name(var) == self.latent
            and self.at("=")
            and letter is not None
            and letter.kind == "letter"
            and letter.text not in self.variables
        ):
            self.i += 2
            self.aliases.setdefault(letter.text, self.latent)

    def optimal_mark(self):
        """Skip ``^*``, ``^{*}``, ``^\\star`` after a density's symbol: the
        optimal distribution (of coordinate-ascent VI, of the E-step)."""
        marks = (["*"], ["\\cdot"], ["\\star"])  # '\\ast' reads '\\cdot'
        if not self.at("^"):
            return False
        j = self.i + 1
        if self.at("{", 1):
            group = []
            j += 1
            while j < len(self.toks) and self.toks[j].text != "}":
                group.append(self.toks[j].text)
                j += 1
            j += 1
        else:
            group = [self.toks[j].text] if j < len(self.toks) else []
            j += 1
        if group not in marks:
            return False
        self.i = j
        return True

    def is_data_set_letter(self, tok):
        """Whether ``tok`` is the upper-case letter of a declared variable
        (X, Z: the data set and its latents)."""
        return tok.text in self.aliases and tok.text.isupper()

    def normal(self):
        """``\\mathcal{N}(z; m, s^2)`` (or ``z | m, s^2``): the univariate normal
        density of a declared one-dimensional variable."""
        tok = self.take()
        self.expect("(")
        at_point = self.normal_at_point(tok)
        if at_point is not None:
            return at_point
        var = self.take()
        self.skip_index()  # x_i: the datum's
        if not (self.is_var(var) and (self.at(";") or self.at("|"))):
            raise self.unsupported(
                tok,
                "a normal density is written with its variable: "
                "\\mathcal{N}(z; \\mu, \\sigma^2)",
            )
        self.take()  # ';' or '|'
        mean = self.expr()
        self.expect(",")
        variance = self.expr()
        self.expect(")")
        return ir.Normal(self.var_name(var), mean, variance)

    def normal_at_point(self, tok):
        """``\\mathcal{N}(y; m, S)`` in matrix notation with y an expression
        that is not a declared variable (``\\mathcal{N}(0; \\mu_a - \\nu_b,
        \\Sigma_a + \\Lambda_b)``): the normal density at the point y
        (``ir.NormalAt``), or None (the position left after the '(')."""
        if self.matrices is None:
            return None
        start = self.i
        if self.is_var(self.peek()) and (self.at(";", 1) or self.at("|", 1)):
            return None
        try:
            point = self.expr()
            ok = self.at(";")
        except ir.Unsupported:
            ok = False
        if not ok:
            self.i = start
            return None
        self.take()
        mean = self.expr()
        self.expect(",")
        cov = self.expr()
        self.expect(")")
        return ir.NormalAt(point, mean, cov)

    def skip_hat_q(self):
        """Skip ``\\hat`` of ``\\hat q`` (``\\hat{q}``, ``\\widehat{q}``): the
        best member of a restricted family, the setting's variational q.
        Leaves the parser at the ``q``; whether it did."""
        t = self.peek()
        if t is None or t.text not in ("\\hat", "\\widehat"):
            return False
        if self.at("q", 1):
            self.i += 1
        elif self.at("{", 1) and self.at("q", 2) and self.at("}", 3):
            self.toks[self.i + 3] = self.toks[self.i + 2]  # \hat{q} -> q
            self.i += 3
        else:
            return False
        return True

    def measure(self):
        """A density given as a measure (E subscript, KL argument, H argument)."""
        self.skip_hat_q()
        t = self.peek()
        if t is None or t.kind != "letter" or t.text not in {"p", "q", *self.mixtures}:
            raise self.unsupported(t, "expected a density p(...) or q(...)")
        return self.density()

    def integral(self):
        tok = self.take()
        space = self.whole_space(tok)
        self.in_integral += 1
        if self.at_differential():  # \int dz f(z)
            self.take()
            var = self.var_name(self.take())
            body = self.expr()
            self.in_integral -= 1
            return self.over_space(ir.Integral(body, var), space, tok)
        body = self.expr()
        if not self.at_differential():
            raise self.unsupported(
                self.peek() or tok, "the integral has no differential d<variable>"
            )
        self.take()
        var = self.var_name(self.take())
        self.in_integral -= 1
        return self.over_space(ir.Integral(body, var), space, tok)

    def whole_space(self, tok):
        """The letter of ``\\int_{\\mathbb{R}^k}`` (the whole space of a
        variable, k for the latent, d for the observed), or None without
        limits; other limits are unsupported."""
        if not (self.at("_") or self.at("^")):
            return None
        texts = [t.text for t in self.toks[self.i : self.i + 6]]
        if texts[:5] == ["_", "{", "mathbb:R", "^", texts[4]] and texts[5] == "}":
            self.i += 6
            return texts[4]
        raise self.unsupported(
            tok,
            "an integral with limits is not supported (over the whole space: "
            "\\int_{\\mathbb{R}^k} ... dz, \\int_{\\mathbb{R}^d} ... dx)",
        )

    def over_space(self, node, space, tok):
        """``node`` when the space of its limits is its variable's (R^k for
        the latent z, R^d for the observed x), else unsupported."""
        if space is not None and space != ("k" if node.var == self.latent else "d"):
            raise self.unsupported(
                tok,
                f"\\int_{{\\mathbb{{R}}^{space}}} over {node.var}: "
                "the latent lives in R^k, the observed variable in R^d",
            )
        return node

    def expectation(self):
        tok = self.take()
        moment = self.component_moment(tok, "E")
        if moment is not None:
            return moment
        if not self.at("_"):
            raise self.unsupported(
                tok,
                "an expectation needs its measure as subscript: write "
                "\\mathbb{E}_{q(z|x)}[...]",
            )
        self.take()
        sub = self.group_tokens()
        if len(sub) == 2 and sub[0].text == "-" and sub[1].text in (self.latent, "j"):
            return self.other_factors(tok)
        if "\\dots" in [g.text for g in sub] or "\\ldots" in [g.text for g in sub]:
            return self.importance_weighted(tok, sub)
        meas, var = self.measure_of(sub, tok, joint=True)
        bare = integrands.bare_integrand(self, var, FUNCTION_NAMES)
        if bare is not None:  # E_q[f]: f at the expectation's variable
            return ir.Expectation(meas, bare, var)
        if var == ir.NOISE and self.at("["):  # E_{\xi ~ N(0, I)}[...]: \xi bound
            bound, self.noise_names = self.noise_names, (sub[0].text,)
            try:
                body = self.bracketed()
            finally:
                self.noise_names = bound
        elif self.at("[") or self.at("(") or self.at("\\{"):
            body = self.bracketed()
        else:  # E_q \log p(x|z): the rest of the product
            body = self.product()
            if body is None:
                raise self.unsupported(self.peek() or tok, "the expectation is empty")
        if var is None:  # E_{q(x, z)}[f] = int int q(x, z) f dz dx
            inner = ir.Integral(ir.Mul((meas, body)), self.latent)
            return ir.Integral(inner, self.observed_name())
        return ir.Expectation(meas, body, var)

    def component_moment(self, tok, kind):
        """``\\mathbb{E}[x \\mid j]``, ``\\operatorname{Cov}[x \\mid j]``
        (``kind`` 'E', 'Cov') after ``tok``: the moments of the observed x
        given a component j of the mixture prior (``ir.CondMoment``), or None
        (the position left after ``tok``)."""
        if self.matrices is None or "a[]" not in self.matrices:
            return None
        texts = [t.text if t is not None else None for t in
                 (self.peek(k) for k in range(5))]  # fmt: skip
        close = {"[": "]", "(": ")"}.get(texts[0])
        comp = self.free_indices | self.indices
        if (close is None or texts[1] != self.observed_name() or texts[2] != "|"
                or texts[3] not in comp or texts[4] != close):  # fmt: skip
            return None
        self.i += 5
        return ir.CondMoment(kind, texts[3])

    def importance_weighted(self, tok, sub):
        """``E_{z_1, \\dots, z_K \\sim q(z|x)}[\\log \\frac{1}{K}
        \\sum_{k=1}^{K} w(z_k)]``: the importance-weighted bound of K samples
        of q(z|x) with weight w (``ir.IWBound``)."""
        texts = [g.text for g in sub]
        form = (
            "an expectation over several samples is read as "
            "\\mathbb{E}_{z_1, \\dots, z_K \\sim q(z|x)}"
            "[\\log \\frac{1}{K} \\sum_{k=1}^{K} w(z_k)]"
        )
        if "\\sim" not in texts or texts[0] != self.latent:
            raise self.unsupported(tok, form)
        inner = Parser(sub[texts.index("\\sim") + 1 :], self.variables, self.latent)
        inner.aliases = dict(self.aliases)
        meas = inner.measure()
        if (
            inner.peek() is not None
            or ir.density_vars(meas, self.latent)
            != (
                (self.latent,),
                (self.observed_name(),),
            )
            or meas.symbol != "q"
        ):
            raise self.unsupported(tok, form)
        last = len(texts) - 1 - texts[::-1].index("_") if "_" in texts else -1
        index = [g for g in sub[last + 1 : texts.index("\\sim")]
                 if g.text not in ("{", "}")]  # fmt: skip
        if last < 0 or not index:
            raise self.unsupported(tok, form)
        count = self.sample_count(index, tok)
        if not (self.at("[") or self.at("(")):
            raise self.unsupported(tok, form)
        close = {"[": "]", "(": ")"}[self.take().text]
        if not self.at("\\log") and not self.at("\\ln"):
            raise self.unsupported(tok, form)
        self.take()
        texts = [t.text if t else None for t in (self.peek(k) for k in range(7))]
        if texts[:5] == ["\\frac", "{", "1", "}", "{"] and texts[6] == "}":
            self.i += 7  # \frac{1}{K}
        elif texts[:2] == ["\\frac", "1"]:
            self.i += 3  # \frac1K
        else:
            raise self.unsupported(tok, form)
        if not self.at("\\sum") or not self.at("_", 1):
            raise self.unsupported(tok, form)
        self.take()
        self.take()
        self.group_tokens()
        if self.at("^"):
            self.take()
            self.group_tokens()
        weight = self.expr()
        self.expect(close)
        return ir.IWBound(count, weight)

    def other_factors(self, tok):
        """``\\mathbb{E}_{-z}[body]``: the expectation over every factor of a
        mean-field q but z's. The declared models have one latent z, so
        there is no other factor and this is the body itself."""
        if not (self.at("[") or self.at("(") or self.at("\\{")):
            raise self.unsupported(tok, "\\mathbb{E}_{-z} needs a bracketed body")
        body = self.bracketed()
        if ir.infer(body, self.latent, self.observed_name()).free - {
            self.latent,
            self.observed_name(),
        }:
            raise self.unsupported(tok, "\\mathbb{E}_{-z} over undeclared latents")
        return body

    def measure_of(self, sub, tok, joint=False):
        """(density, variable) of an expectation's subscript tokens; with
        ``joint``, a joint density of the latent and the observed variable
        gives the variable None (the expectation integrates over both)."""
        at_noise = noise.noise_measure(sub)
        if at_noise is not None:
            return at_noise
        inner = Parser(sub, self.variables, self.latent)
        inner.aliases = dict(self.aliases)
        inner.mixtures = self.mixtures
        if len(sub) >= 2 and inner.is_var(sub[0]) and sub[1].text == "\\sim":
            var = inner.var_name(sub[0])
            inner.i = 2
        else:
            var = None
        meas = inner.measure()
        if inner.peek() is not None:
            raise inner.unsupported(inner.peek(), "unexpected token in the measure")
        if var is None:
            v, g = ir.density_vars(meas, self.latent)
            both = {self.latent, self.observed_name()}
            if joint and set(v) == both and not g:
                return meas, None
            if len(v) != 1:
                raise self.unsupported(tok, "the expectation's variable is unclear")
            var = v[0]
        return meas, var

    def angle_expectation(self):
        """``\\langle f \\rangle_{q}``: the expectation of f under q."""
        tok = self.take()
        body = self.expr()
        self.expect("\\rangle")
        if not self.at("_"):
            raise self.unsupported(
                tok,
                "\\langle ... \\rangle needs its measure "
                "as subscript: \\langle f \\rangle_{q}",
            )
        self.take()
        meas, var = self.measure_of(self.group_tokens(), tok)
        return ir.Expectation(meas, body, var)

    def kl(self):
        d = self.take()
        self.take()  # '_'
        sub = "".join(g.text for g in self.group_tokens())
        if self.mixtures and sub in NAMED_DIVERGENCES:
            kl = self.kl_arguments(d)
            return ir.NamedDivergence(sub, kl.a, kl.b)
        if sub not in ("KL", "mathrm:KL") and sub.replace("mathrm:", "") != "KL":
            raise self.unsupported(d, f"unsupported symbol D_{{{sub}}}")
        return self.kl_arguments(d)

    def kl_arguments(self, tok):
        self.skip_data_index()  # KL_i: the datum's
        if self.at_term_end() and not self.at("|") and not self.at("||"):
            if "bare:KL" in (self.matrices or ()):  # the setting's KL(p || q)
                return ir.KL(ir.Density("p", None, ()), ir.Density("q", None, ()))
            if {"f", "g"} <= self.mixtures:  # D_{lower}: of the mixtures f, g
                return ir.KL(ir.Density("f", None, ()), ir.Density("g", None, ()))
            # a bare KL, as a bare ELBO: of the declared q to the posterior
            x = self.observed_name()
            q = ir.Density("q", (self.latent,), (x,))
            return ir.KL(q, ir.Density("p", (self.latent,), (x,)))
        if not (self.at("(") or self.at("[")):
            raise self.unsupported(self.peek() or tok, "expected '(' after KL")
        close = ")" if self.take().text == "(" else "]"
        if self.matrices is not None and self.at("mathcal:N") and self.at("(", 1):
            a = self.normal_measure(None)  # a normal by its parameters, of z
        else:
            a = self.integral() if self.at("\\int") else self.measure()
        if not (self.at("||") or self.at(",") or self.at("|") or self.at(";")):
            raise self.unsupported(
                self.peek() or tok,
                "expected the KL bar '\\|' between the two densities: D_{KL}(q \\| p)",
            )
        self.take()
        if self.matrices is not None and self.at("mathcal:N") and self.at("(", 1):
            b = self.normal_measure(a)
        else:
            b = self.integral() if self.at("\\int") else self.measure()
        self.expect(close)
        return ir.KL(a, b)

    def normal_measure(self, other):
        """``\\mathcal{N}(mean, cov)`` as a KL's argument in matrix notation:
        the normal density of the first argument's variable (``other``), or
        as the first, of the latent."""
        self.take()
        self.expect("(")
        mean = self.expr()
        self.expect(",")
        cov = self.expr()
        self.expect(")")
        if other is None:
            return ir.Gaussian(mean, cov, self.latent)
        (var, *more), _ = ir.density_vars(other, self.latent)
        if more:
            raise self.unsupported(self.peek(), "a normal density of one variable")
        return ir.Gaussian(mean, cov, var)

    def entropy(self):
        close = ")" if self.take().text == "(" else "]"
        a = self.measure()
        if self.at(",") or self.at(";"):  # the cross-entropy H(a, b)
            self.take()
            b = self.measure()
            self.expect(close)
            (var,), _ = ir.density_vars(a, self.latent)
            return ir.Expectation(a, ir.Add((ir.Log(b),), (-1,)), var)
        self.expect(close)
        return ir.Entropy(a)

    def parameter(self):
        """``\\mu``, ``\\sigma`` of the Gaussian q(z|x), with a latent-dimension
        index ``_j`` bound by ``\\sum_j`` (or none, for one dimension)."""
        tok = self.take()
        index = None
        if self.at("_"):
            self.take()
            group = self.group_tokens()
            if len(group) == 1 and group[0].text in ("1", "2"):  # p's, q's
                return ir.Param(tok.text.lstrip("\\"), group[0].text)
            if len(group) != 1 or group[0].text not in self.dims:
                shown = "".join(g.text for g in group)
                raise self.unsupported(
                    tok,
                    f"{tok.text}_{{{shown}}}: a parameter's index must be a "
                    "latent dimension j bound by \\sum_{j=1}^{J}",
                )
            index = group[0].text
        return ir.Param(tok.text.lstrip("\\"), index)

    def mutual_information(self):
        """``I(x; z)``, ``I_q(x; z)``: the mutual information of x and z under
        q(x, z) = p_data(x) q(z|x), i.e. E_{p_data(x)}[KL(q(z|x) || q(z))]
        with q(z) the aggregated posterior (the amortized setting)."""
        tok = self.take()
        deco = self.decoration()
        if deco not in ("", "q", "phi", "q_phi", "qphi"):
            raise self.unsupported(tok, f"I_{deco}: only I_q(x; z) is supported")
        self.expect("(")
        pair = []
        while not self.at(")"):
            t = self.take()
            if t.text in (",", ";"):
                continue
            if not self.is_var(t):
                raise self.unsupported(t, f"'{t.text}' in I(x; z) is not a variable")
            pair.append(self.var_name(t))
        self.expect(")")
        x, z = self.observed_name(), self.latent
        if sorted(pair) != sorted((x, z)):
            raise self.unsupported(tok, "only I(x; z), of the data and the latent")
        enc = ir.Density("q", (z,), (x,))
        agg = ir.Density("q", (z,), (), "agg")
        data = ir.Density("p", (x,), (), "data")
        return ir.Expectation(data, ir.KL(enc, agg), x)

    def observed_name(self):
        """The observed variable (the declared variable that is not latent)."""
        others = sorted(v for v in self.variables if v != self.latent)
        return others[0] if others else "x"

    def sample_count(self, group, tok):
        """The number of importance samples written in ``group``: a number,
        ``K`` or an expression in K (``K+1``)."""
        sub = Parser(group, self.variables, self.latent)
        sub.counting = True
        count = sub.expr()
        if sub.peek() is not None:
            raise self.unsupported(tok, "the bound's index is a number of samples")
        return count

    def elbo(self):
        tok = self.take()
        start = self.i
        if self.at("_") and tok.text == "mathcal:L":
            self.take()
            group = self.group_tokens()
            texts = [g.text for g in group]
            counted = all(t.isdigit() or t in ("K", "+", "-") for t in texts)
            if counted and texts != ["1"]:  # L_1 is the ELBO
                if self.at("("):
                    raise self.unsupported(tok, "\\mathcal{L}_K takes no arguments")
                return ir.IWBound(self.sample_count(group, tok))
            self.i = start
        deco = self.decoration()
        if deco == "1":  # the importance-weighted bound of one sample
            deco = ""
        if any(c.isdigit() for c in deco) or deco in ("K", "k", "S", "M", "L", "N"):
            raise self.unsupported(
                tok,
                f"an indexed bound ({tok}_{deco}) is not the ELBO; write "
                "\\mathcal{L}_K for the importance-weighted bound of K samples, "
                "\\mathcal{L} or \\mathcal{L}_1 for the ELBO",
            )
        q, at = None, ""
        if self.at("("):
            self.take()
            depth = 1
            while depth:
                t = self.peek()
                if t is None:
                    raise self.unsupported(t)
                if t.text == "(":
                    depth += 1
                elif t.text == ")":
                    depth -= 1
                is_density = t.kind == "letter" and t.text in ("p", "q")
                if depth and is_density and q is None:
                    q = self.density()
                    continue
                self.take()
                if depth == 1 and t.text in _MODEL_PARAMETERS:
                    at = self.parameter_version(t)
        return ir.ELBO(q, at)

    def q_function(self):
        """Bishop's ``Q(\\theta, \\theta^{old})``: the expected complete-data
        log-likelihood E_{p(z|x, theta^old)}[log p(x, z | theta)] (of the data
        set: the sum over the data in a line that sums over them)."""
        tok = self.take()
        self.expect("(")
        at = []
        while not self.at(")"):
            t = self.take()
            if t.text == ",":
                continue
            resp = self.peek().text in labels.RESPONSIBILITIES
            if t.text == ";" and len(at) == 1 and resp:
                # Q(\theta; r): under the responsibilities at the current theta
                self.take()
                at.append("")
                continue
            if t.text not in _MODEL_PARAMETERS:
                raise self.unsupported(
                    t, "Q(\\theta, \\theta^{old}) takes the parameters at two values"
                )
            at.append(self.parameter_version(t))
        self.expect(")")
        if len(at) != 2:
            raise self.unsupported(tok, "Q(\\theta, \\theta^{old}) has two arguments")
        x, z = self.observed_name(), self.latent
        post = ir.Density("p", (z,), (x,), "", True, at[1])
        joint = ir.Density("p", (x, z), (), "", True, at[0])
        return ir.Expectation(post, ir.Log(joint), z)


def split_equations(display):
    """Token sequences of the equations of a display, each a chain.

    A row that starts with a relation or a ``+``/``-`` continues the previous
    row's chain; a comma (or ``\\text{and}``) at bracket depth 0 separates
    equations; trailing punctuation is dropped.
    """
    seqs = []
    for row in display.rows:
        toks = [t for t in row if t.text != "&"]
        if not toks:
            continue
        cont = seqs and (
            toks[0].text in RELATIONS
            or toks[0].text in ("+", "-")
            or seqs[-1][-1].text in RELATIONS | {"+", "-"}
        )
        if cont:
            seqs[-1].extend(toks)
        else:
            seqs.append(list(toks))
    out = []
    for seq in seqs:
        depth, cur = 0, []
        for t in seq:
            if t.kind == "char" and t.text in ("(", "[", "{"):
                depth += 1
            elif t.kind == "char" and t.text in (")", "]", "}"):
                depth -= 1
            if depth == 0 and (t.text in (",", ".", ";") or t.text in ("and", "where")):
                if cur:
                    out.append(cur)
                cur = []
                continue
            cur.append(t)
        if cur:
            out.append(cur)
    if not out:
        raise MalformedLatex("empty equation: the display holds no math", display.line)
    return out


def re_rational(text):
    """Whether ``text`` is an integer or a fraction of integers (``-1/2``)."""
    return re.fullmatch(r"-?\d+(/\d+)?", text) is not None


#: Letters of an entry index of an elementwise derivative (``\\partial \\psi_j``).
ENTRY_INDICES = ("j", "a")


def _joint_denominator(texts, latent):
    """Whether ``texts`` are ``\\log p(x_i, z=k)`` (also ``x_{i}``, ``x``):
    the log-joint at a datum and a label."""
    texts = [t for t in texts if t not in ("{", "}")]
    if texts[:4] != ["\\log", "p", "(", "x"] or texts[-1] != ")":
        return False
    rest = texts[4:-1]
    if rest[:2] in (["_", "i"], ["_", "n"]):
        rest = rest[2:]
    return len(rest) == 4 and rest[:3] == [",", latent, "="] and rest[3].isalpha()


def _entry_subscript(texts):
    """(the tokens naming the parameter, the entry index) of an elementwise
    derivative's ``P_j``, ``P_{j}``, ``P_{p,j}`` (P_p at j), ``x_{ij}`` (the
    datum x_i at j); None for another subscript."""
    if len(texts) < 3 or texts[1] != "_":
        return None
    sub = [t for t in texts[2:] if t not in ("{", "}")]
    head = texts[0]
    if len(sub) == 1 and sub[0] in ENTRY_INDICES:
        return (head,), sub[0]
    if len(sub) == 3 and sub[1] == "," and sub[2] in ENTRY_INDICES:
        return (head, "_", sub[0]), sub[2]
    if len(sub) == 2 and sub[0] in DATA_INDICES and sub[1] in ENTRY_INDICES:
        return (head, "_", sub[0]), sub[1]
    return None


def nodes(node):
    """``node`` and every node under it."""
    yield node
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            v = getattr(node, f.name)
            for item in v if isinstance(v, tuple) else (v,):
                if dataclasses.is_dataclass(item):
                    yield from nodes(item)


#: Nodes that bind the latent (or stand for a bound over it) per datum.
_PER_DATUM = (ir.Sum, ir.Integral, ir.Expectation, ir.KL, ir.Entropy, ir.ELBO)


def _data_set(node, latent, observed):
    """``node`` of a line that sums over the data, with each quantity of the
    data set outside the sums made explicit (``ir.DataSum``): a density in
    the data set's letters is the product over the data, a bound or
    divergence of the data set the sum of the per-datum ones. A per-datum x
    left outside the sums has no value here."""
    if isinstance(node, ir.DataSum | ir.DataCount | ir.DataMean):
        return node
    if isinstance(node, ir.Density) and node.dataset:
        return ir.DataSum(node, "i", True)
    if isinstance(node, _PER_DATUM):
        inner = list(nodes(node))
        if isinstance(node, ir.ELBO) or any(
            getattr(n, "dataset", False)
            or (isinstance(n, ir.Sum) and n.index.isupper())
            for n in inner
        ):
            return ir.DataSum(node, "i")
    free = ir.infer(node, latent, observed).free
    if observed not in free:
        return node
    if isinstance(node, (ir.Density, ir.Var, ir.Param, ir.Normal, *_PER_DATUM)):
        raise ir.Unsupported(
            f"{ir.describe(node)} of one datum outside the sum over the data: "
            f"write {observed.upper()} for the data set, or move it into "
            "\\sum_{i=1}^{N}"
        )
    kids = {}
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, tuple):
            kids[f.name] = tuple(
                _data_set(c, latent, observed) if dataclasses.is_dataclass(c) else c
                for c in v
            )
        elif dataclasses.is_dataclass(v):
            kids[f.name] = _data_set(v, latent, observed)
    return dataclasses.replace(node, **kids)


_VERSIONED = (ir.Density, ir.ELBO, ir.LabelParam)


def _rewrite(node, fn):
    """``node`` with ``fn`` applied to it and every node under it, bottom up."""
    kids = {}
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, tuple):
            kids[f.name] = tuple(
                _rewrite(c, fn) if dataclasses.is_dataclass(c) else c for c in v
            )
        elif dataclasses.is_dataclass(v):
            kids[f.name] = _rewrite(v, fn)
    return fn(dataclasses.replace(node, **kids))


def _at_old(node):
    """``node`` with every undecorated parameter value read at theta^{old}:
    a line that names theta^{new} (an M-step's update, pi_k^{new} = N_k / N)
    but not theta^{old} computes its other quantities (the responsibilities,
    N_k) at the parameters the step starts from."""

    def old(n):
        versioned = isinstance(n, _VERSIONED) and not n.at
        return dataclasses.replace(n, at="old") if versioned else n

    return _rewrite(node, old)


def _vector_data(exprs, observed):
    """``exprs`` with the datum x read as a vector (``ir.VecVar``) when the
    line holds a component's vector or matrix (``\\mu_k^{new} = \\frac{1}{N_k}
    \\sum_i r_{ik} x_i``)."""
    if not any(labels.is_matrix(n) for e in exprs for n in nodes(e)):
        return exprs
    var = ir.Var(observed)
    return [_rewrite(e, lambda n: ir.VecVar(observed) if n == var else n)
            for e in exprs]  # fmt: skip


def parse_equation(tokens, variables=("z", "x"), latent="z", choices=(),
                   matrices=None, definitions=None):  # fmt: skip
    """Parse one chain; returns (ir.Equation, sites) or raises ir.Unsupported.
    ``matrices``: read in matrix notation with these symbols (``Parser``)."""
    p = Parser(tokens, variables, latent, choices, matrices, definitions)
    texts = [t.text for t in tokens[:3]]
    if (
        len(texts) == 3
        and p.is_data_set_letter(tokens[0])
        and texts[1:] == ["=", "\\{"]
    ):
        # X = \{x_i\}_{i=1}^{N}: the data set, defined
        name = ir.Var(p.var_name(tokens[0]))
        rel = ir.Relation(":=", name, name, tokens[1].line)
        return ir.Equation(tokens[1].line, (name, name), (rel,))
    exprs, ops = p.chain()
    exprs = read_estimates(exprs, nodes)
    data = (ir.DataSum, ir.DataCount, ir.DataMean)
    exprs = _vector_data(exprs, p.observed_name())
    versions = {getattr(n, "at", "") for e in exprs for n in nodes(e)}
    if "new" in versions and "old" not in versions:
        exprs = [_at_old(e) for e in exprs]
    if any(isinstance(n, data) for e in exprs for n in nodes(e)):
        observed = p.observed_name()
        exprs = [_data_set(e, latent, observed) for e in exprs]
    elif versions - {""}:
        # parameters at two values (an EM step): what EM guarantees is of the
        # data set, so a line in data-set quantities (p(X|theta), F(q, theta),
        # Q) sums them over the data; a line about one datum x stays per datum
        try:
            exprs = [_data_set(e, latent, p.observed_name()) for e in exprs]
        except ir.Unsupported:
            pass
    consts = p.constant_sides  # '= ... + const': equal up to a constant in z
    rels = tuple(
        ir.Relation(
            UP_TO_CONSTANT if op.text == "=" and {k, k + 1} & consts else op.text,
            exprs[k],
            exprs[k + 1],
            op.line,
        )
        for k, op in enumerate(ops)
    )
    if consts and rels and not any(r.op == UP_TO_CONSTANT for r in rels):
        raise ir.Unsupported(
            "+ const on a side of a relation other than '='", None, tokens[0].line
        )
    line = ops[0].line if ops else tokens[0].line
    reading = tuple(choices[: len(p.sites)]) + (CONVENTIONAL,) * max(
        0, len(p.sites) - len(choices)
    )
    return ir.Equation(line, tuple(exprs), rels, reading, tuple(p.sites))


def readings(tokens, variables=("z", "x"), latent="z", prefer=CONVENTIONAL,
             matrices=None, definitions=None):  # fmt: skip
    """Every reading of the chain, the preferred one first.

    ``prefer`` is 'rest' (conventional: ``\\log`` takes the rest of the product)
    or 'first' (``\\log`` takes one factor). Ambiguous sites beyond
    MAX_AMBIGUOUS_SITES raise Unsupported rather than explode combinatorially.
    """
    first = parse_equation(tokens, variables, latent, (), matrices, definitions)
    n = len(first.sites)
    if n == 0:
        return [first]
    if n > MAX_AMBIGUOUS_SITES:
        raise ir.Unsupported(
            f"{n} ambiguous \\log sites (more than {MAX_AMBIGUOUS_SITES}); "
            "add brackets",
            None,
            first.line,
        )
    out = []
    other = FIRST_FACTOR if prefer == CONVENTIONAL else CONVENTIONAL
    for combo in itertools.product((prefer, other), repeat=n):
        out.append(
            parse_equation(tokens, variables, latent, combo, matrices, definitions)
        )
    return out


CONSTANTS = {"pi": math.pi, "e": math.e}
