"""refvi verify --format junit | github: JUnit XML in the schema CI systems
read, and GitHub workflow commands in their documented syntax."""

import re
from pathlib import Path
from xml.etree import ElementTree as ET

from refvi.cli import main

CORPUS = Path(__file__).parent / "latex_corpus"
SIGN_ERROR = CORPUS / "sign_error_kl.md"  # line 5 fails, line 8 holds
UNSUPPORTED = CORPUS / "unsupported.md"  # unsupported lines and a failing one

#: The JUnit schema (Jenkins' junit.xsd, as pytest's xunit2 writes it): the
#: attributes each element may carry, and those it must.
ALLOWED = {
    "testsuites": {"name", "tests", "failures", "errors", "skipped", "time"},
    "testsuite": {
        "name",
        "tests",
        "failures",
        "errors",
        "skipped",
        "time",
        "timestamp",
        "hostname",
        "id",
        "package",
    },
    "testcase": {"name", "classname", "time", "assertions", "status"},
    "failure": {"message", "type"},
    "error": {"message", "type"},
    "skipped": {"message", "type"},
}
REQUIRED = {
    "testsuite": {"name", "tests"},
    "testcase": {"name", "classname"},
}
CHILDREN = {
    "testsuites": {"testsuite"},
    "testsuite": {"testcase", "properties", "system-out", "system-err"},
    "testcase": {"failure", "error", "skipped", "system-out", "system-err"},
    "failure": set(),
    "error": set(),
    "skipped": set(),
}


def junit_schema_errors(xml):
    """Every way ``xml`` departs from the JUnit schema, as a list of str."""
    root = ET.fromstring(xml)
    bad = []
    if root.tag != "testsuites":
        bad.append(f"root is {root.tag}")

    def walk(node):
        extra = set(node.attrib) - ALLOWED.get(node.tag, set())
        missing = REQUIRED.get(node.tag, set()) - set(node.attrib)
        if node.tag not in ALLOWED:
            bad.append(f"unknown element {node.tag}")
        if extra:
            bad.append(f"{node.tag} has {sorted(extra)}")
        if missing:
            bad.append(f"{node.tag} lacks {sorted(missing)}")
        for key in ("tests", "failures", "errors", "skipped"):
            if key in node.attrib and not node.attrib[key].isdigit():
                bad.append(f"{node.tag} {key}={node.attrib[key]!r}")
        if node.tag == "testcase":
            outcomes = [c for c in node if c.tag in ("failure", "error", "skipped")]
            if len(outcomes) > 1:
                bad.append("testcase with two outcomes")
        for child in node:
            if child.tag not in CHILDREN.get(node.tag, set()):
                bad.append(f"{child.tag} inside {node.tag}")
            walk(child)

    walk(root)
    for suite in [root, *root.iter("testsuite")]:
        cases = list(suite.iter("testcase"))
        for key, tag in (("failures", "failure"), ("errors", "error")):
            n = sum(1 for c in cases if c.find(tag) is not None)
            if int(suite.get(key, "0")) != n:
                bad.append(f"{suite.tag} {suite.get('name')}: {key} != {n}")
        if int(suite.get("tests", "-1")) != len(cases):
            bad.append(f"{suite.tag} {suite.get('name')}: tests != {len(cases)}")
    return bad


def run(capsys, *args):
    status = main(["verify", *args])
    out = capsys.readouterr().out
    return status, out


def test_junit_validates_and_has_one_case_per_line(capsys):
    status, xml = run(capsys, "--format", "junit", str(SIGN_ERROR), str(UNSUPPORTED))
    assert status == 1
    assert junit_schema_errors(xml) == []
    root = ET.fromstring(xml)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(SIGN_ERROR), str(UNSUPPORTED)]
    cases = suites[0].findall("testcase")
    assert [c.get("name")[:4] for c in cases] == ["L5: ", "L8: "]
    assert cases[0].find("failure") is not None and len(cases[1]) == 0
    assert "deviation" in cases[0].find("failure").get("message")
    skipped = [
        c for c in suites[1].findall("testcase") if c.find("skipped") is not None
    ]
    assert skipped and all(c.find("skipped").get("message") for c in skipped)


def test_junit_malformed_file_is_an_error_case(tmp_path, capsys):
    bad = tmp_path / "bad.md"
    bad.write_text("---\nsettings: nonsense\n---\n$$ a = b $$\n")
    status = main(["verify", "--format", "junit", str(bad)])
    xml = capsys.readouterr().out
    assert status == 2
    assert junit_schema_errors(xml) == []
    error = ET.fromstring(xml).find("testsuite/testcase/error")
    assert error is not None and str(bad) in error.get("message")


def test_junit_error_type_is_the_kind_of_the_error(tmp_path, capsys):
    files = {
        "bad.md": ("settings: nonsense", "a", "malformed"),
        "lim.md": ("settings: linear_gaussian\ntolerance: inf", "a", "limits"),
        "uns.md": ("settings: linear_gaussian", "np.f2py", "unsupported"),
    }
    for name, (front, check, _) in files.items():
        text = f"---\n{front}\n---\n$$ a = b $$\n\n```check\n{check}\n```\n"
        (tmp_path / name).write_text(text)
    paths = sorted(str(p) for p in tmp_path.glob("*.md"))
    assert main(["verify", "--format", "junit", *paths]) == 2
    xml = capsys.readouterr().out
    assert junit_schema_errors(xml) == []
    types = {
        Path(e.get("message").split(":")[0]).name: e.get("type")
        for e in ET.fromstring(xml).iter("error")
    }
    assert types == {name: kind for name, (_, _, kind) in files.items()}


def test_schema_check_catches_a_wrong_document():
    wrong = (
        '<testsuites><testsuite name="x" tests="2" failures="0">'
        '<testcase name="a" classname="c" file="f.md"><failure/></testcase>'
        "</testsuite></testsuites>"
    )
    errors = junit_schema_errors(wrong)
    assert "testcase has ['file']" in errors
    assert any("failures != 1" in e for e in errors)
    assert any("tests != 1" in e for e in errors)


#: GitHub's workflow command syntax: ::LEVEL key=value,...::message, values
#: and message with %, CR, LF (and in values : and ,) escaped.
COMMAND = re.compile(
    r"^::(error|warning|notice)"
    r"(?: (?:file=[^,:\r\n]+,line=\d+,)?title=[^,:\r\n]+)?"
    r"::[^\r\n]*$"
)


def test_github_lines_match_the_workflow_command_syntax(capsys):
    status, out = run(capsys, "--format", "github", str(SIGN_ERROR), str(UNSUPPORTED))
    assert status == 1
    lines = out.splitlines()
    assert lines and all(COMMAND.match(line) for line in lines), lines
    errors = [line for line in lines if line.startswith("::error ")]
    assert errors[0].startswith(f"::error file={SIGN_ERROR},line=5,title=")
    assert lines[-1].startswith("::notice title=refvi verify::2 files")
    assert COMMAND.match("::error file=a,b.md,line=1,title=t::m") is None


def test_github_escapes_percent_and_newlines():
    from refvi.checker.ci_report import _escape_data, _escape_property

    assert _escape_data("50% \n x") == "50%25 %0A x"
    assert _escape_property("a:b,c") == "a%3Ab%2Cc"


def test_every_bundled_line_holds_so_no_error_annotation(capsys):
    em = Path(__file__).resolve().parents[2] / "derivations" / "em.md"
    status, out = run(capsys, "--format", "github", str(em))
    assert status == 0
    assert not [line for line in out.splitlines() if line.startswith("::error")]


def test_pre_commit_hook_runs_refvi_verify_on_markdown():
    root = Path(__file__).resolve().parents[2]
    text = (root / ".pre-commit-hooks.yaml").read_text()
    hook = dict(
        line.strip().lstrip("- ").split(": ", 1)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert hook["id"] == "refvi-verify"
    assert hook["entry"] == "refvi verify" and hook["language"] == "python"
    assert hook["types"] == "[markdown]"
    assert "id: refvi-verify" in (root / "README.md").read_text()
