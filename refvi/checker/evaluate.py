"""The check language: an interpreter over an allowlist of Python expressions.

A check block's expressions are data, not code. They are parsed by Python's
``ast`` and interpreted here, never passed to ``eval``:

- node kinds: names, constants (numbers, strings, ``...``), ``+ - * / ** @``,
  unary ``-``/``+``, calls, attribute access, subscripts and slices, tuples,
  lists and ``lambda`` with plain parameters (``NODES``);
- names: the instance's (``Instance.names``), a few builtins (``BUILTINS``)
  and ``np``, a namespace of plain functions and constants each named here
  (``NP``; ``np.linalg`` likewise), never a module;
- attributes: the ``np.<name>`` of that namespace, and on the arrays the
  interpreter returns only ``ARRAY_ATTRIBUTES`` (``.T``, ``.shape``,
  ``.sum``, ...): no method that writes (``setflags``, ``fill``, ``put``,
  ``tofile``, ...), no private name;
- calls: no ``out=`` (by keyword or position), no ``**``; every function of
  the namespace takes the arguments listed for it and no others.

Limits (``refvi.checker.limits``): sizes of arrays are checked before they are
made where the arguments give them (``zeros``, ``ones``, ``eye``, ``outer``,
broadcasting, ``range``, integer ``**`` and ``*``); matrix products, einsum
and factorisations are bounded in operation count; an expression runs at most
``CHECK_SECONDS`` of computing time (checked at every node and around
every call; wall time at most ``WALL_FACTOR`` times that) and nests at
most ``MAX_NESTING`` deep. Anything outside the language or a limit raises
``Refused`` naming the construct.
"""

import ast
import math
import operator
import time

import numpy as np

from refvi.checker import limits, propagate
from refvi.checker.measured import Measured, Unpropagated


class Refused(Exception):
    """A check reached outside the language (or, as ``LimitExceeded``,
    exceeded a limit)."""


class LimitExceeded(Refused):
    """A check exceeded a limit of ``refvi.checker.limits``."""


NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load,
    ast.Constant, ast.Attribute, ast.Subscript, ast.Slice, ast.Tuple, ast.List,
    ast.Lambda, ast.arguments, ast.arg, ast.keyword,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.MatMult, ast.USub, ast.UAdd,
)  # fmt: skip

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.MatMult: operator.matmul,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_CONSTANTS = (int, float, str, bool, type(None), type(Ellipsis))


# ---------------------------------------------------------------------------
# Sizes and costs, computed before the work.


def _elements(shape, what):
    """The element count of ``shape`` (an int or a sequence of ints), refused
    above ``MAX_ARRAY_ELEMENTS``."""
    dims = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    count = math.prod(int(d) for d in dims)
    if count > limits.MAX_ARRAY_ELEMENTS:
        raise LimitExceeded(
            f"{what} would make {count:.3g} elements; the limit is "
            f"{limits.MAX_ARRAY_ELEMENTS:.0e}"
        )
    return count


def _count(value, seen=None):
    """Numbers held by ``value`` (arrays by size, nested lists by their
    items, each distinct list counted once), refused above the array limit."""
    if isinstance(value, np.ndarray | Measured):
        return value.size
    if isinstance(value, str):
        return max(len(value), 1)  # an array of strings holds each character
    if not isinstance(value, list | tuple):
        return 1
    seen = {} if seen is None else seen
    if id(value) not in seen:
        seen[id(value)] = 0
        total = sum(_count(item, seen) for item in value)
        if total > limits.MAX_ARRAY_ELEMENTS:
            raise LimitExceeded(
                f"a list of {total:.3g} numbers; the limit is "
                f"{limits.MAX_ARRAY_ELEMENTS:.0e}"
            )
        seen[id(value)] = total
    return seen[id(value)]


def _shape(value):
    """The array shape of a number, array or (nested) list; None for anything
    else (functions of z, estimates, strings)."""
    if isinstance(value, np.ndarray | np.generic | int | float):
        return np.shape(value)
    if isinstance(value, Measured):
        return value.shape
    if not isinstance(value, list | tuple):
        return None
    _count(value)
    shape, item = [], value
    while isinstance(item, list | tuple):
        shape.append(len(item))
        if not item:
            break
        item = item[0]
    if isinstance(item, np.ndarray | np.generic):
        shape.extend(np.shape(item))
    return tuple(shape)


def _broadcast(what, *args):
    """Refuse elementwise ``what`` on ``args`` whose broadcast is too large."""
    shapes = [s for s in map(_shape, args) if s is not None]
    if len(shapes) > 1:
        _elements(np.broadcast_shapes(*shapes), what)


def _operations(count, what):
    if count > limits.MAX_OPERATIONS:
        raise LimitExceeded(
            f"{what} would take {count:.3g} operations; the limit is "
            f"{limits.MAX_OPERATIONS:.0e}"
        )


def _matmul_guard(a, b, what="@"):
    sa, sb = _shape(a), _shape(b)
    if sa is None or sb is None or len(sa) == 0 or len(sb) == 0:
        return _broadcast(what, a, b)
    sa2 = sa if len(sa) > 1 else (1, *sa)
    sb2 = sb if len(sb) > 1 else (*sb, 1)
    batch = np.broadcast_shapes(sa2[:-2], sb2[:-2])
    n = _elements((*batch, sa2[-2], sb2[-1]), what)
    _operations(n * sa2[-1], what)


def _einsum_guard(subscripts, *operands):
    """Output size and iteration count of ``einsum`` from its subscripts."""
    if not isinstance(subscripts, str):
        raise Refused("np.einsum takes its subscripts as a string first")
    inputs, arrow, output = subscripts.replace(" ", "").partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        return  # einsum reports the mismatch itself
    sizes = {}
    implicit = []
    for term, operand in zip(terms, operands, strict=True):
        shape = _shape(operand) or ()
        letters = list(term.replace("...", ""))
        if "..." in term:
            extra = len(shape) - len(letters)
            at = term.index("...")
            fill = [f"@{i}" for i in range(max(extra, 0))]
            letters = list(term[:at]) + fill + list(term[at + 3 :])
            implicit = fill if len(fill) > len(implicit) else implicit
        for letter, dim in zip(letters, shape, strict=False):
            sizes[letter] = max(sizes.get(letter, 1), int(dim))
    if arrow:
        out = [c for c in output.replace("...", "")] + implicit
    else:
        counts = [c for t in terms for c in t.replace("...", "")]
        out = [c for c in set(counts) if counts.count(c) == 1] + implicit
    _elements([sizes.get(c, 1) for c in out], "np.einsum")
    _operations(math.prod(sizes.values()) * max(len(terms) - 1, 1), "np.einsum")


def _factor_guard(a, *args):
    """Cost of a factorisation or solve: batch * n^3."""
    shape = _shape(a)
    if shape is not None and len(shape) >= 2:
        _operations(math.prod(shape[:-2]) * shape[-1] ** 3, "a matrix factorisation")


def _shape_guard(name):
    def guard(shape, *args):
        _elements(shape, f"np.{name}")

    return guard


def _eye_guard(N, M=None, k=0):
    _elements((N, N if M is None else M), "np.eye")


def _diag_guard(name):
    """np.diag, np.tril, np.triu make an (n, n) matrix from a vector."""

    def guard(v, k=0):
        shape = _shape(v)
        if shape is not None and len(shape) == 1:
            n = shape[0] + abs(int(k))
            _elements((n, n), f"np.{name}")

    return guard


def _full_guard(shape, fill_value):
    _elements(shape, "np.full")
    if not isinstance(fill_value, int | float | np.number):
        raise Refused("np.full fills with a number")


def _outer_guard(a, b):
    _elements(_count(a) * _count(b), "np.outer")


def _broadcast_to_guard(array, shape):
    _elements(shape, "np.broadcast_to")


def _arange_guard(*args):
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    count = (float(stop) - float(start)) / float(step)
    if not math.isfinite(count):
        raise Refused("np.arange needs finite start, stop and a non-zero step")
    _elements(max(math.ceil(count), 0), "np.arange")


def _range_guard(*args):
    _elements(len(range(*args)), "range")


def _sum_guard(iterable):
    """Python's sum over a list of arrays adds each in turn."""
    if isinstance(iterable, list | tuple):
        largest = max((_count(i) for i in iterable), default=1)
        _elements(len(iterable) * largest, "sum over a list")


def _stack_guard(arrays, *args, **kwargs):
    _count(list(arrays) if isinstance(arrays, list | tuple) else arrays)


def _elementwise_guard(name):
    def guard(*args):
        _broadcast(name, *args)

    return guard


# ---------------------------------------------------------------------------
# The namespace: plain functions, each with the arguments it accepts.


class Function:
    """A function a check may call: at most ``positional`` positional
    arguments and only the listed keywords (never ``out``); ``guard`` checks
    sizes and costs before the call; ``family`` says how a ``Measured``
    argument's error bound passes through it (``refvi.checker.propagate``;
    None: a ``Measured`` argument is refused)."""

    def __init__(self, name, fn, positional, keywords=(), guard=None, family=None):
        self.name = name
        self.fn = fn
        self.positional = positional
        self.keywords = frozenset(keywords)
        self.guard = guard
        self.family = family

    def __call__(self, *args, **kwargs):
        if len(args) > self.positional:
            raise Refused(
                f"{self.name} takes at most {self.positional} positional "
                f"argument(s) in a check; got {len(args)}"
            )
        for key in kwargs:
            if key not in self.keywords:
                raise Refused(f"keyword {key}= is not accepted by {self.name}")
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, list | tuple):
                _count(arg)  # a list becomes an array of this many numbers
        try:
            if self.guard is not None:
                self.guard(*args, **kwargs)
            if propagate.contains_measured((args, tuple(kwargs.values()))):
                return propagate.call(self.family, self.name, self.fn, args, kwargs)
            return self.fn(*args, **kwargs)
        except Unpropagated as err:  # outside the check language
            raise Refused(str(err)) from None

    def __repr__(self):
        return f"<{self.name}>"


class Namespace:
    """``np`` (and ``np.linalg``): named functions and constants, no module."""

    def __init__(self, name, members):
        self.name = name
        self.members = members

    def attribute(self, attr):
        if attr not in self.members:
            raise Refused(
                f"{self.name}.{attr} is not in the check language "
                f"(see derivations/README.md for the names a check may use)"
            )
        return self.members[attr]

    def __repr__(self):
        return f"<{self.name}>"


_AXIS = ("axis", "keepdims")


def _np_functions():
    """The members of ``np``: name -> (function, positional, keywords, guard)."""
    unary = ("exp", "log", "sqrt", "abs", "log1p", "expm1", "square", "tanh")
    binary = ("maximum", "minimum", "logaddexp")
    table = {name: (getattr(np, name), 1, (), None) for name in unary}
    table.update({name: (getattr(np, name), 2, (), None) for name in binary})
    table.update(
        einsum=(np.einsum, 32, (), _einsum_guard),
        sum=(np.sum, 2, _AXIS, None),
        mean=(np.mean, 2, _AXIS, None),
        std=(np.std, 2, (*_AXIS, "ddof"), None),
        max=(np.max, 2, _AXIS, None),
        min=(np.min, 2, _AXIS, None),
        trace=(np.trace, 4, ("offset", "axis1", "axis2"), None),
        diagonal=(np.diagonal, 4, ("offset", "axis1", "axis2"), None),
        diag=(np.diag, 2, ("k",), _diag_guard("diag")),
        tril=(np.tril, 2, ("k",), _diag_guard("tril")),
        triu=(np.triu, 2, ("k",), _diag_guard("triu")),
        outer=(np.outer, 2, (), _outer_guard),
        concatenate=(np.concatenate, 2, ("axis",), _stack_guard),
        stack=(np.stack, 2, ("axis",), _stack_guard),
        broadcast_to=(np.broadcast_to, 2, (), _broadcast_to_guard),
        swapaxes=(np.swapaxes, 3, (), None),
        transpose=(np.transpose, 2, ("axes",), None),
        zeros=(np.zeros, 1, (), _shape_guard("zeros")),
        ones=(np.ones, 1, (), _shape_guard("ones")),
        full=(np.full, 2, (), _full_guard),
        eye=(np.eye, 3, ("k",), _eye_guard),
        zeros_like=(np.zeros_like, 1, (), None),
        ones_like=(np.ones_like, 1, (), None),
        arange=(np.arange, 3, (), _arange_guard),
    )
    for name in ("exp", "log", "sqrt", "maximum", "minimum", "logaddexp"):
        fn, n, kw, _ = table[name]
        table[name] = (fn, n, kw, _elementwise_guard(f"np.{name}"))
    return table


#: How each function of ``np`` carries a ``Measured`` argument's error bound
#: (``refvi.checker.propagate``); a function not named here refuses one.
FAMILY = {
    **dict.fromkeys(
        ("exp", "log", "sqrt", "abs", "log1p", "expm1", "square", "tanh"),
        "elementwise",
    ),
    **dict.fromkeys(("maximum", "minimum", "logaddexp"), "lipschitz"),
    **dict.fromkeys(
        (
            "sum",
            "mean",
            "trace",
            "diagonal",
            "diag",
            "tril",
            "triu",
            "concatenate",
            "stack",
            "broadcast_to",
            "swapaxes",
            "transpose",
        ),
        "linear",
    ),  # fmt: skip
    **dict.fromkeys(("max", "min"), "extreme"),
    "std": "std",
    **dict.fromkeys(("einsum", "outer"), "multilinear"),
    **dict.fromkeys(("zeros_like", "ones_like"), "exact"),
}


def _linalg_functions():
    return {
        "solve": (np.linalg.solve, 2, (), _factor_guard),
        "cholesky": (np.linalg.cholesky, 1, (), _factor_guard),
        "det": (np.linalg.det, 1, (), _factor_guard),
        "slogdet": (np.linalg.slogdet, 1, (), _factor_guard),
        "inv": (np.linalg.inv, 1, (), _factor_guard),
        "eigh": (np.linalg.eigh, 1, (), _factor_guard),
        "eigvalsh": (np.linalg.eigvalsh, 1, (), _factor_guard),
    }


def _namespace(name, table):
    return {
        key: Function(f"{name}.{key}", fn, n, kw, guard, FAMILY.get(key))
        for key, (fn, n, kw, guard) in table.items()
    }


NP = Namespace(
    "np",
    {
        **_namespace("np", _np_functions()),
        "linalg": Namespace("np.linalg", _namespace("np.linalg", _linalg_functions())),
        "pi": np.pi,
        "e": np.e,
        "newaxis": None,
    },
)

#: Python builtins a check may call.
BUILTINS = {
    "abs": Function("abs", abs, 1, family="arithmetic"),
    "min": Function("min", min, 8),
    "max": Function("max", max, 8),
    "sum": Function("sum", sum, 1, (), _sum_guard, "arithmetic"),
    "len": Function("len", len, 1),
    "float": Function("float", float, 1),
    "range": Function("range", range, 3, (), _range_guard),
}

#: Shorthands for np.exp, np.log and np.sqrt (on a function of z they give a
#: function of z).
SHORTHANDS = {name: NP.members[name] for name in ("exp", "log", "sqrt")}

#: Attributes of arrays a check may use: properties, and methods as
#: (positional count, keywords). None of them writes to the array.
ARRAY_ATTRIBUTES = {
    "T": None,
    "shape": None,
    "ndim": None,
    "size": None,
    "sum": (1, _AXIS),
    "mean": (1, _AXIS),
    "std": (1, (*_AXIS, "ddof")),
    "max": (1, _AXIS),
    "min": (1, _AXIS),
    "ravel": (0, ()),
    "flatten": (0, ()),
    "reshape": (32, ()),
    "transpose": (32, ()),
    "swapaxes": (2, ()),
    "squeeze": (1, ("axis",)),
    "diagonal": (3, ("offset", "axis1", "axis2")),
    "trace": (3, ("offset", "axis1", "axis2")),
    "copy": (0, ()),
    "item": (32, ()),
}


#: The array methods a ``Measured`` value offers: the function of the values
#: and its family (``refvi.checker.propagate``); ``.item`` is refused (it
#: would drop the error estimate).
_MEASURED_METHODS = {
    "sum": (np.sum, "linear"),
    "mean": (np.mean, "linear"),
    "std": (np.std, "std"),
    "max": (np.max, "extreme"),
    "min": (np.min, "extreme"),
    "ravel": (np.ravel, "linear"),
    "flatten": (np.ravel, "linear"),
    "reshape": (lambda a, *shape: np.reshape(a, _shape_arg(shape)), "linear"),
    "transpose": (lambda a, *axes: np.transpose(a, _shape_arg(axes)), "linear"),
    "swapaxes": (np.swapaxes, "linear"),
    "squeeze": (np.squeeze, "linear"),
    "diagonal": (np.diagonal, "linear"),
    "trace": (np.trace, "linear"),
    "copy": (np.copy, "linear"),
}


def _shape_arg(args):
    """``a.reshape(2, 3)`` and ``a.reshape((2, 3))`` alike (None if empty)."""
    if not args:
        return None
    return args[0] if len(args) == 1 else args


def _measured_attribute(value, attr):
    """An attribute of a ``Measured`` value: its shape, its transpose, or an
    array method that carries the error bound."""
    if attr in ("shape", "ndim", "size"):
        return getattr(value.value, attr)
    if attr == "T":
        return Measured(value.value.T, value.error.T)
    if attr not in _MEASURED_METHODS:
        raise Refused(
            f".{attr} of a measured value (a quadrature result) would drop its "
            "error estimate; not allowed in a check"
        )
    fn, family = _MEASURED_METHODS[attr]
    positional, keywords = ARRAY_ATTRIBUTES[attr]

    def method(*args, **kwargs):
        return propagate.call(family, f".{attr}", fn, (value, *args), kwargs)

    return Function(f".{attr}", method, positional, keywords)


def _array_attribute(value, attr):
    if isinstance(value, Measured):
        return _measured_attribute(value, attr)
    if not isinstance(value, np.ndarray | np.generic):
        raise Refused(
            f"attribute .{attr} of a {type(value).__name__}: a check reads "
            "attributes of arrays only"
        )
    spec = ARRAY_ATTRIBUTES[attr]
    if spec is None:
        return getattr(value, attr)
    positional, keywords = spec
    return Function(f".{attr}", getattr(value, attr), positional, keywords)


# ---------------------------------------------------------------------------
# Compiling: the static checks.


def _nesting(tree):
    """Deepest nesting of ``tree``; a chain ``a + b + c`` counts as one level
    (it is evaluated as a loop)."""
    deepest, stack = 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in ast.iter_child_nodes(node):
            same_chain = (
                isinstance(node, ast.BinOp)
                and child is node.left
                and isinstance(child, ast.BinOp)
            )
            stack.append((child, depth if same_chain else depth + 1))
    return deepest


def _resolve_np(node):
    """The value of an ``np.a.b`` chain, or None if ``node`` is not one."""
    chain = []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if not (isinstance(node, ast.Name) and node.id == "np"):
        return None
    value = NP
    for attr in reversed(chain):
        if not isinstance(value, Namespace):
            raise Refused(
                f"attribute .{attr} of {value!r} is not in the check language"
            )
        value = value.attribute(attr)
    return value


def compile_check(source):
    """Parse and check one expression; returns (tree, free names).

    Raises ``Refused`` naming the construct that is outside the language, and
    SyntaxError for a malformed expression.
    """
    source = source.strip()
    if len(source) > limits.MAX_EXPRESSION_CHARS:
        raise LimitExceeded(
            f"expression of {len(source)} characters; the limit is "
            f"{limits.MAX_EXPRESSION_CHARS}"
        )
    try:
        tree = ast.parse(source, mode="eval")
    except (MemoryError, RecursionError):
        raise LimitExceeded(
            f"expression nests more than {limits.MAX_NESTING} deep"
        ) from None
    if _nesting(tree) > limits.MAX_NESTING:
        raise LimitExceeded(f"expression nests more than {limits.MAX_NESTING} deep")
    bound, names = set(), set()
    # in source order of where each node ends, so the innermost offence is named
    nodes = sorted(
        ast.walk(tree),
        key=lambda n: (getattr(n, "end_lineno", 0), getattr(n, "end_col_offset", 0)),
    )
    for node in nodes:
        if not isinstance(node, NODES):
            raise Refused(f"{type(node).__name__} is not allowed in a check")
        if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANTS):
            raise Refused(f"a {type(node.value).__name__} constant is not allowed")
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise Refused(f"private attribute {node.attr!r} in a check")
            if _resolve_np(node) is None and node.attr not in ARRAY_ATTRIBUTES:
                raise Refused(
                    f"attribute .{node.attr} is not allowed in a check (arrays "
                    f"offer {', '.join(ARRAY_ATTRIBUTES)})"
                )
        if isinstance(node, ast.keyword):
            if node.arg is None:
                raise Refused("** arguments are not allowed in a check")
            if node.arg == "out":
                raise Refused("out= is not allowed in a check: nothing is written")
        if isinstance(node, ast.arguments) and (
            node.vararg or node.kwarg or node.defaults or node.kw_defaults
        ):
            raise Refused("a lambda takes plain parameters only (no defaults, *, **)")
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        if isinstance(node, ast.Name):
            names.add(node.id)
    return tree, frozenset(names - bound)


# ---------------------------------------------------------------------------
# Evaluating.


class _Lambda:
    """A check's ``lambda``: called by the settings' operators (E_q, grad,
    ...) with positional or keyword arguments; its body is interpreted."""

    def __init__(self, run, node, scope):
        self.run = run
        self.node = node
        self.scope = scope
        self.params = [a.arg for a in node.args.posonlyargs + node.args.args]
        self.params += [a.arg for a in node.args.kwonlyargs]

    def __call__(self, *args, **kwargs):
        if len(args) > len(self.params):
            raise TypeError(f"lambda takes {len(self.params)} argument(s)")
        bound = dict(zip(self.params, args, strict=False))
        for key, value in kwargs.items():
            if key not in self.params or key in bound:
                raise TypeError(f"lambda got an unexpected argument {key!r}")
            bound[key] = value
        if len(bound) != len(self.params):
            raise TypeError(f"lambda takes {len(self.params)} argument(s)")
        run = self.run
        if run.depth >= limits.MAX_CALL_DEPTH:
            raise LimitExceeded(
                f"lambdas call each other more than {limits.MAX_CALL_DEPTH} deep"
            )
        run.depth += 1
        try:
            return run.eval(self.node.body, {**self.scope, **bound})
        finally:
            run.depth -= 1

    def __repr__(self):
        return "<lambda>"


def _binary(op, a, b):
    """``a op b`` after the size checks of ints, sequences and arrays."""
    ints = isinstance(a, int | np.integer) and isinstance(b, int | np.integer)
    if ints and isinstance(a, int) and isinstance(b, int):
        if op is ast.Pow and b > 0 and abs(a) > 1:
            bits = (abs(a).bit_length() - 1) * b
            if bits > limits.MAX_INT_BITS:
                raise LimitExceeded(
                    f"integer ** would have about {bits:.3g} bits; the limit "
                    f"is {limits.MAX_INT_BITS}"
                )
        if op is ast.Mult and a.bit_length() + b.bit_length() > limits.MAX_INT_BITS:
            raise LimitExceeded(f"integer * beyond {limits.MAX_INT_BITS} bits")
    sequences = (list, tuple, str)
    if isinstance(a, sequences) or isinstance(b, sequences):
        if op is ast.Mult and isinstance(a, int) != isinstance(b, int):
            seq, times = (a, b) if isinstance(b, int) else (b, a)
            _elements(len(seq) * max(times, 0), "repeating a sequence")
        if isinstance(a, sequences) and isinstance(b, sequences):
            _elements(len(a) + len(b), "joining sequences")
            return _BINARY[op](a, b)
    if op is ast.MatMult:
        _matmul_guard(a, b)
        if isinstance(a, Measured) or isinstance(b, Measured):
            return propagate.matmul(a, b)
    else:
        _broadcast(f"'{_SYMBOL[op]}'", a, b)
    return _BINARY[op](a, b)


_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
           ast.MatMult: "@"}  # fmt: skip


def _fancy_guard(value, index):
    """Indexing by lists or arrays can make an array larger than its input:
    at most (index entries) x (input size)."""
    parts = index if isinstance(index, tuple) else (index,)
    fancy = sum(_count(p) for p in parts if isinstance(p, list | np.ndarray))
    if fancy and isinstance(value, np.ndarray):
        _elements(fancy * value.size, "indexing by a list or array")


def _checked_value(value):
    """Refuse an array result above the element limit (a catch-all behind
    the checks made before each operation)."""
    if isinstance(value, np.ndarray | Measured) and (
        value.size > limits.MAX_ARRAY_ELEMENTS
    ):
        raise LimitExceeded(
            f"an array of {value.size:.3g} elements; the limit is "
            f"{limits.MAX_ARRAY_ELEMENTS:.0e}"
        )
    if isinstance(value, int) and value.bit_length() > limits.MAX_INT_BITS:
        raise LimitExceeded(f"an integer beyond {limits.MAX_INT_BITS} bits")
    return value


class _Run:
    """One evaluation: the names, the deadline, the lambda call depth."""

    def __init__(self, names, seconds):
        self.names = names
        # the check's own computing time, robust to other load on the machine,
        # and a wall-clock cap for a machine so loaded that it barely runs
        self.cpu_deadline = time.thread_time() + seconds
        self.wall_deadline = time.monotonic() + limits.WALL_FACTOR * seconds
        self.seconds = seconds
        self.steps = 0
        self.depth = 0
        self.held = 0

    def hold(self, value):
        """Count ``value`` as held while later operands are evaluated; the
        arrays held at once are bounded (``MAX_HELD_ELEMENTS``)."""
        n = _count(value) if isinstance(value, np.ndarray | list | tuple) else 0
        self.held += n
        if self.held > limits.MAX_HELD_ELEMENTS:
            raise LimitExceeded(
                f"the check holds more than {limits.MAX_HELD_ELEMENTS:.0e} "
                "numbers at once (the limit)"
            )
        return n

    def tick(self):
        self.steps += 1
        if self.steps % 64 == 0:
            self.check_time()

    def check_time(self):
        late = time.monotonic() > self.wall_deadline
        if late or time.thread_time() > self.cpu_deadline:
            raise LimitExceeded(
                f"the check ran longer than {self.seconds:g} s (the limit)"
            )

    def eval(self, node, scope):
        self.tick()
        kind = type(node)
        if kind is ast.BinOp:
            return self.binop(node, scope)
        if kind is ast.Name:
            if node.id in scope:
                return scope[node.id]
            if node.id in self.names:
                return self.names[node.id]
            raise Refused(f"unknown name {node.id!r}")
        if kind is ast.Constant:
            return node.value
        if kind is ast.Call:
            return self.call(node, scope)
        if kind is ast.Attribute:
            np_value = _resolve_np(node) if "np" not in scope else None
            if np_value is not None:
                return np_value
            return _array_attribute(self.eval(node.value, scope), node.attr)
        if kind is ast.UnaryOp:
            operand = self.eval(node.operand, scope)
            return _checked_value(_UNARY[type(node.op)](operand))
        if kind is ast.Subscript:
            value = self.eval(node.value, scope)
            index = self.eval(node.slice, scope)
            _fancy_guard(value, index)
            return _checked_value(value[index])
        if kind is ast.Slice:
            parts = (node.lower, node.upper, node.step)
            return slice(*(None if p is None else self.eval(p, scope) for p in parts))
        if kind is ast.Tuple:
            return tuple(self.each(node.elts, scope))
        if kind is ast.List:
            return self.each(node.elts, scope)
        if kind is ast.Lambda:
            return _Lambda(self, node, scope)
        raise Refused(f"{kind.__name__} is not allowed in a check")

    def binop(self, node, scope):
        """A left-leaning chain ``a + b - c ...`` as a loop (no recursion)."""
        chain = []
        while isinstance(node, ast.BinOp):
            chain.append(node)
            node = node.left
        value = self.eval(node, scope)
        for link in reversed(chain):
            held = self.hold(value)
            try:
                right = self.eval(link.right, scope)
            finally:
                self.held -= held
            value = _checked_value(_binary(type(link.op), value, right))
            self.tick()
        return value

    def each(self, nodes, scope):
        """The values of ``nodes``, each held while the next is evaluated."""
        values, held = [], 0
        try:
            for item in nodes:
                values.append(self.eval(item, scope))
                held += self.hold(values[-1])
        finally:
            self.held -= held
        return values

    def call(self, node, scope):
        fn = self.eval(node.func, scope)
        if isinstance(fn, Namespace) or not callable(fn):
            raise Refused(f"{fn!r} is not a function a check can call")
        args = self.each(node.args, scope)
        values = self.each([k.value for k in node.keywords], scope)
        kwargs = {k.arg: v for k, v in zip(node.keywords, values, strict=True)}
        self.check_time()
        value = fn(*args, **kwargs)
        self.check_time()
        return _checked_value(value)


def evaluate(tree, names, seconds=None):
    """The value of a compiled check (``compile_check``) with ``names``
    (the instance's) in scope, within ``seconds`` (default
    ``limits.CHECK_SECONDS``).

    Raises ``Refused`` on a construct outside the language or a limit; other
    exceptions are the check's own errors (a shape mismatch, ...).
    """
    env = {**BUILTINS, **SHORTHANDS, "np": NP, **names}
    run = _Run(env, limits.CHECK_SECONDS if seconds is None else seconds)
    try:
        return run.eval(tree.body, {})
    except RecursionError:
        raise LimitExceeded("the check nests too deeply to evaluate") from None
    except MemoryError:
        raise LimitExceeded("the check ran out of memory") from None
