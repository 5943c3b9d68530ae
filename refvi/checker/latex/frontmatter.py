"""The front-matter declarations of a derivation checked from its LaTeX.

Flat ``key: value`` lines between ``---`` lines (the format of
``refvi.checker.derivation``). Keys read here::

    settings: linear_gaussian, mixture_prior
    latent: z
    observed: x
    family: gaussian
    shorthands: q(z) = q(z|x), p(x) = p_theta(x)
    reading: conventional            (or: first-factor)
    convex: f                        (concave: g; abstract functions)
    assume: misspecified; well-specified (data = model); exact q (q = exact)

Any key may be scoped to one section (a ``##`` heading) by prefixing it with
``section "<heading text>"``::

    section "Problem - Aggregated posterior mismatch" shorthands: q(z) = aggregate

Other keys (``title``, ``seeds``, ...) are ignored here.
"""

import re
from dataclasses import dataclass, replace

from refvi.checker.latex.evaluate import Shorthands
from refvi.checker.latex.models import GAUSSIAN_SETTINGS
from refvi.checker.latex.parser import CONVENTIONAL, FIRST_FACTOR, FUNCTION_NAMES
from refvi.checker.latex.tokens import MalformedLatex, display_spans
from refvi.checker.limits import check_setting_options
from refvi.checker.read import LATEX_KEYS, DerivationError, front_matter

KEYS = LATEX_KEYS
_Q_Z = {"q(z|x)": "conditional", "conditional": "conditional", "aggregate": "aggregate",
        "q_agg(z)": "aggregate", "int q(z|x) p_data(x) dx": "aggregate"}  # fmt: skip
_P_X = {"p_theta(x)": "model", "model": "model", "p_data(x)": "data", "data": "data"}
_ASSUME_KEYS = {
    "data": ("model", "data", "data2"),
    "q": ("exact", "encoder", "prior", "flip"),
    "estimates": ("m-step",),
}
NON_GAUSSIAN_DEFAULT = "mixture_prior"


@dataclass(frozen=True)
class Scope:
    """The declarations in force in one section."""

    settings: tuple = (("linear_gaussian", ()), ("mixture_prior", ()))
    latent: str = "z"
    observed: str = "x"
    family: str = "gaussian"
    shorthands: Shorthands = Shorthands()
    reading: str = CONVENTIONAL
    assume: tuple = (("as declared", ()),)  # (name, ((key, value), ...)), primary first
    added: str | None = "mixture_prior"  # the non-Gaussian setting added, if any
    pinned: bool = False  # check on the declared settings only


def _settings(value, line):
    """``a, b(k=1, d=2)`` -> ((name, ((key, value), ...)), ...).

    A list of Gaussian settings only gets the non-Gaussian counterpart added,
    so that an identity true only for Gaussians cannot pass. A setting the
    LaTeX checker has no model for makes the lines it is needed for
    unsupported (``models.make_model``), not the file unreadable.
    """
    out = []
    for name, opts in re.findall(r"([A-Za-z_]\w*)\s*(?:\(([^)]*)\))?", value):
        items = [o.split("=", 1) for o in opts.split(",") if "=" in o]
        pairs = tuple((k.strip(), v.strip()) for k, v in items)
        try:
            check_setting_options(name, pairs)
        except ValueError as err:
            raise MalformedLatex(str(err), line) from None
        out.append((name, pairs))
    names = {name for name, _ in out}
    added = None
    # the gaussian setting is a pair of Gaussians, not a latent-variable model:
    # a statement about it is about Gaussians, so nothing is added to it alone
    if names <= set(GAUSSIAN_SETTINGS) and names != {"gaussian"}:
        added = (
            "aggregated_mixture_prior"
            if names & {"aggregated", "amortized"}
            else NON_GAUSSIAN_DEFAULT
        )
        out.append((added, ()))
    return tuple(out), added


def _shorthands(value, line, current):
    out = current
    for item in filter(None, (p.strip() for p in value.split(","))):
        lhs, sep, rhs = item.partition("=")
        lhs, rhs = (
            lhs.replace(" ", ""),
            rhs.strip().replace("\\", "").replace("{", "").replace("}", ""),
        )
        if lhs == "q(z)" and rhs.replace(" ", "") in {k.replace(" ", "") for k in _Q_Z}:
            key = next(k for k in _Q_Z if k.replace(" ", "") == rhs.replace(" ", ""))
            out = replace(out, q_z=_Q_Z[key])
        elif lhs == "p(x)" and rhs.replace(" ", "") in _P_X:
            out = replace(out, p_x=_P_X[rhs.replace(" ", "")])
        else:
            raise MalformedLatex(
                f"cannot read shorthand {item!r}: expected 'q(z) = q(z|x)' or "
                "'q(z) = aggregate', 'p(x) = p_theta(x)' or 'p(x) = p_data(x)'",
                line,
            )
    return out


def _functions(kind, value, line, current):
    """``convex: f, g`` / ``concave: h``: abstract functions of that kind."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if n not in FUNCTION_NAMES]
    if bad:
        raise MalformedLatex(
            f"{kind}: {bad[0]!r} is not a function name; the abstract functions "
            f"are {', '.join(FUNCTION_NAMES)}",
            line,
        )
    kept = tuple(f for f in current.functions if f[0] not in names)
    return replace(current, functions=kept + tuple((n, kind) for n in names))


def _assume(value, line):
    out = []
    for item in filter(None, (p.strip() for p in value.split(";"))):
        m = re.match(r"^([^()]+?)\s*(?:\(([^)]*)\))?$", item)
        if not m:
            raise MalformedLatex(f"cannot read assumption {item!r}", line)
        name, body = m.group(1).strip(), m.group(2) or ""
        pairs = []
        for kv in filter(None, (p.strip() for p in body.split(","))):
            k, sep, v = (s.strip() for s in kv.partition("="))
            if not sep or k not in _ASSUME_KEYS or v not in _ASSUME_KEYS[k]:
                raise MalformedLatex(
                    f"cannot read {kv!r} in assumption {name!r}; expected "
                    "'data = model|data|data2', 'q = exact|encoder|prior|flip' "
                    "or 'estimates = m-step'",
                    line,
                )
            pairs.append((k, v))
        out.append((name, tuple(pairs)))
    return tuple(out)


def _apply(scope, key, value, line):
    if key == "settings":
        settings, added = _settings(value, line)
        return replace(scope, settings=settings, added=added)
    if key == "pinned":
        if value not in ("true", "false"):
            raise MalformedLatex(f"pinned must be true or false; got {value!r}", line)
        return replace(scope, pinned=value == "true")
    if key in ("latent", "observed", "family"):
        if key != "family" and not re.fullmatch(r"[A-Za-z]", value):
            raise MalformedLatex(f"{key} must be one letter; got {value!r}", line)
        return replace(scope, **{key: value})
    if key == "shorthands":
        return replace(scope, shorthands=_shorthands(value, line, scope.shorthands))
    if key in ("convex", "concave"):
        return replace(scope, shorthands=_functions(key, value, line, scope.shorthands))
    if key == "reading":
        choice = {"conventional": CONVENTIONAL, "first-factor": FIRST_FACTOR}.get(value)
        if choice is None:
            raise MalformedLatex(
                f"reading must be conventional or first-factor; got {value!r}", line
            )
        return replace(scope, reading=choice)
    return replace(scope, assume=_assume(value, line))


_LATENT_SUM_RE = re.compile(r"\\sum_\{?\s*(?:\\mathbf\{)?([kzcZ])\b")


_PAIR_RE = {i: re.compile(r"\\(?:mu|sigma)_\{?" + i + r"\b") for i in "12"}


def infer_settings(body):
    """(settings, why) for a derivation whose front matter names none: a sum
    over the latent's values (``\\sum_k``, ``\\sum_z``) means a discrete latent,
    the mixture; otherwise z is continuous: the linear-Gaussian model (the
    mixture-prior model is added to every Gaussian list); parameters indexed
    1 and 2 (``\\mu_1``, ``\\sigma_2``) are those of two univariate Gaussians,
    the gaussian setting in one dimension."""
    if _LATENT_SUM_RE.search(body):
        return "mixture", "a sum over the latent's values: discrete z"
    if all(_PAIR_RE[i].search(body) for i in "12"):
        return "gaussian(d=1)", (
            "parameters indexed 1 and 2: two univariate Gaussians "
            "p = N(mu_1, sigma_1^2), q = N(mu_2, sigma_2^2)"
        )
    return "linear_gaussian, mixture_prior", "continuous z"


_AGGREGATE_DEF_RE = re.compile(
    r"q(?:_\{?\\phi\}?)?\(z\)=\\intq(?:_\{?\\phi\}?)?\(z(?:\||\\mid)x\)"
    r"p(?:_\{?\\?\w+\}?)?\(x\)(?:\\,)?(?:d|\\mathrm\{d\})x"
)
#: What a section that defines q(z) as the aggregated posterior is checked
#: under, when the front matter names no settings.
AGGREGATE_SECTION = (
    ("settings", "aggregated"),
    ("shorthands", "q(z) = aggregate, p(x) = p_data(x)"),
    ("assume", "misspecified model; well-specified (data = model); "
               "exact posterior (q = exact)"),
)  # fmt: skip


def aggregate_sections(lines):
    """Titles of the ``#`` sections whose displays define q(z) as the
    aggregated posterior, ``q(z) = \\int q(z|x) p(x) dx``."""
    titles, current = [], ""
    for text in lines:
        if text.startswith("#"):
            current = text.lstrip("#").strip()
        titles.append(current)
    found = []
    for span in display_spans("\n".join(lines)):
        title = titles[span.line - 1]
        if _AGGREGATE_DEF_RE.search(re.sub(r"\s+", "", span.source)):
            if title and title not in found:
                found.append(title)
    return found


def read(lines, path="<derivation>"):
    """(global Scope, {section title: Scope}, first body line index).

    ``lines`` are the file's lines. The entries come from the one
    front-matter reader (``checker.read``: keys refvi does not know are
    ignored, refvi's may sit under ``refvi:``). Without settings (or without
    front matter) they are inferred from the body (:func:`infer_settings`,
    and :func:`aggregate_sections` for a section that defines the aggregated
    posterior).
    """
    try:
        found, end, _ = front_matter(lines, path)
    except DerivationError as err:
        raise MalformedLatex(err.message, err.line) from None
    entries = [
        (e.section, e.key, e.value, e.line) for e in found or () if e.key in KEYS
    ]
    if not any(key == "settings" and section is None for section, key, _, _ in entries):
        entries.insert(
            0, (None, "settings", infer_settings("\n".join(lines[end:]))[0], 1)
        )
        declared = {section for section, key, _, _ in entries if key == "settings"}
        entries += [
            (title, key, value, 1)
            for title in aggregate_sections(lines)
            if title not in declared
            for key, value in AGGREGATE_SECTION
        ]
    top = Scope()
    for section, key, value, line in entries:
        if section is None:
            top = _apply(top, key, value, line)
    sections = {}
    for section, key, value, line in entries:
        if section is not None:
            sections[section] = _apply(sections.get(section, top), key, value, line)
    top, sections = _pin(top), {name: _pin(sc) for name, sc in sections.items()}
    declared = {section for section, key, _, _ in entries if key == "shorthands"}
    top = _default_shorthands(top, None in declared)
    sections = {
        name: _default_shorthands(scope, bool(declared & {None, name}))
        for name, scope in sections.items()
    }
    return top, sections, end


def _pin(scope):
    """``pinned: true``: the derivation is about its declared (Gaussian)
    settings only; the non-Gaussian setting otherwise added is left out."""
    if not scope.pinned or scope.added is None:
        return scope
    kept = tuple(s for s in scope.settings if s[0] != scope.added)
    return replace(scope, settings=kept, added=None)


def _default_shorthands(scope, declared):
    """Where only aggregated-posterior settings are in force and nothing is
    declared, an undecorated q(z) is the aggregated posterior (the only q(z)
    those settings have)."""
    names = {name for name, _ in scope.settings}
    if declared or not names <= {"aggregated", "aggregated_mixture_prior"}:
        return scope
    return replace(scope, shorthands=replace(scope.shorthands, q_z="aggregate"))
