"""``refvi verify`` output for CI systems: JUnit XML and GitHub annotations.

Both read the verdict of each displayed line from the report's result
objects (``LineResult``): ``holds``, ``fails``, ``undetermined`` (the error
estimate is too large to decide), ``unsupported`` or ``unchecked``.

JUnit (``--format junit``): one ``<testsuite>`` per derivation file and one
``<testcase>`` per displayed line, named ``L<line>: <LaTeX start>``, with
``<failure>`` for a line that fails, ``<error>`` for one undetermined and
``<skipped>`` for one unchecked or unsupported; a file that cannot be read
is a suite with one ``<error>`` case. The elements and attributes are those
of the JUnit schema that Jenkins, GitLab and most CI systems read (pytest's
``xunit2``): no attribute outside it.

GitHub (``--format github``): one workflow command per line that does not
hold, ``::error file=PATH,line=N,title=refvi verify::MESSAGE`` for a
failure, ``::warning ...`` for an undetermined line, ``::notice ...`` for an
unchecked or unsupported one, and a closing ``::notice::`` with the totals.
"""

import re
from xml.etree import ElementTree as ET

__all__ = ["github_annotations", "junit_xml", "verdict_of"]

LATEX_WIDTH = 60


def verdict_of(line):
    """The line's verdict: holds, fails, undetermined, unsupported, unchecked."""
    verdict = getattr(line, "verdict", None)
    if verdict is not None:
        return verdict
    if line.unchecked is not None:
        return "unchecked"
    return "holds" if line.holds else "fails"


def _reason(line):
    return getattr(line, "reason", None) or line.unchecked or ""


def _describe(line):
    """One sentence: the relation, the deviation and what the hint says."""
    if verdict_of(line) in ("unchecked", "unsupported"):
        return _reason(line)
    parts = [f"{verdict_of(line)}: {line.relation}"]
    if line.deviation is not None:
        parts.append(f"deviation {line.deviation:+.3e}")
    for name in ("error", "tolerance", "margin"):
        value = getattr(line, name, None)
        if value is not None:
            parts.append(f"{name} {value:.3e}")
    route = getattr(line, "route", "")
    if route:
        parts.append(f"route {route}")
    text = ", ".join(parts)
    hint = getattr(line, "hint", None)
    extra = [hint] if hint else []
    extra += [n for n in line.note if n != hint]
    reason = _reason(line)
    if reason and verdict_of(line) != "fails":
        extra.insert(0, reason)
    return "; ".join([text, *extra])


def _short(latex, width=LATEX_WIDTH):
    flat = " ".join(latex.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _classname(path):
    """``derivations/em.md`` -> ``derivations.em``."""
    return re.sub(r"\.md$", "", str(path)).replace("/", ".").replace("\\", ".")


_ERROR = re.compile(r"^(?P<path>.*?):(?P<line>\d+): error: (?P<message>.*)$")


def _where(result, line):
    """``L12``, or a notebook's ``cell 3, line 2``."""
    return f"L{line}" if result.cells is None else result.where(line)


def junit_xml(results, errors=(), kinds=()):
    """The report as a JUnit XML document (a string); ``kinds`` names the kind
    of each of ``errors`` (``malformed``, ``unsupported``, ``limits``: the
    error's ``type``), ``malformed`` where none is given."""
    root = ET.Element("testsuites", name="refvi verify")
    totals = dict(tests=0, failures=0, errors=0, skipped=0)
    for result in results:
        counts = dict(tests=0, failures=0, errors=0, skipped=0)
        suite = ET.SubElement(root, "testsuite", name=str(result.path))
        for line in result.lines:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_classname(result.path),
                name=f"{_where(result, line.line)}: {_short(line.latex)}",
                time="0",
            )
            counts["tests"] += 1
            verdict = verdict_of(line)
            message = _describe(line)
            if verdict == "fails":
                counts["failures"] += 1
                node = ET.SubElement(case, "failure", message=message, type="fails")
                node.text = (
                    f"{result.path}:{result.where(line.line)}: {line.latex}\n{message}"
                )
            elif verdict == "undetermined":
                counts["errors"] += 1
                node = ET.SubElement(
                    case, "error", message=message, type="undetermined"
                )
                node.text = (
                    f"{result.path}:{result.where(line.line)}: {line.latex}\n{message}"
                )
            elif verdict in ("unchecked", "unsupported"):
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=_reason(line))
        _set_counts(suite, counts)
        for key in totals:
            totals[key] += counts[key]
    kinds = list(kinds) + ["malformed"] * (len(errors) - len(kinds))
    for error, kind in zip(errors, kinds, strict=True):
        m = _ERROR.match(error)
        path = m.group("path") if m else "refvi verify"
        suite = ET.SubElement(root, "testsuite", name=path)
        case = ET.SubElement(
            suite, "testcase", classname=_classname(path), name="read", time="0"
        )
        node = ET.SubElement(case, "error", message=error, type=kind)
        node.text = error
        _set_counts(suite, dict(tests=1, failures=0, errors=1, skipped=0))
        totals["tests"] += 1
        totals["errors"] += 1
    _set_counts(root, totals)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _set_counts(element, counts):
    for key, value in counts.items():
        element.set(key, str(value))
    element.set("time", "0")


def _escape_data(text):
    """Workflow-command message escaping: %, CR, LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text):
    """Workflow-command property escaping: also ':' and ','."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


_LEVEL = {
    "fails": "error",
    "undetermined": "warning",
    "unchecked": "notice",
    "unsupported": "notice",
}


def github_annotations(results, errors=()):
    """The report as GitHub workflow commands, one per line, a list of str."""
    out = []
    title = _escape_property("refvi verify")
    for result in results:
        path = _escape_property(str(result.path))
        for line in result.lines:
            level = _LEVEL.get(verdict_of(line))
            if level is None:
                continue
            message = _escape_data(f"{_short(line.latex)}: {_describe(line)}")
            out.append(
                f"::{level} file={path},line={result.file_line(line.line)},"
                f"title={title}::{message}"
            )
    for error in errors:
        m = _ERROR.match(error)
        if m:
            path = _escape_property(m.group("path"))
            message = _escape_data(m.group("message"))
            out.append(
                f"::error file={path},line={m.group('line')},title={title}::{message}"
            )
        else:
            out.append(f"::error title={title}::{_escape_data(error)}")
    counts = {}
    for result in results:
        for line in result.lines:
            counts[verdict_of(line)] = counts.get(verdict_of(line), 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no lines"
    out.append(f"::notice title={title}::{len(results)} files: {_escape_data(summary)}")
    return out
