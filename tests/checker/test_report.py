"""The report of `refvi verify` (refvi.checker.report): text rows with verdict,
route and margin; the summary and exit codes; the versioned JSON schema, which
the output is validated against."""

import json

import pytest

from refvi.checker.report import SCHEMA_VERSION, exit_code, schema
from refvi.checker.results import FileResult, LineResult
from refvi.cli import main

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
    "integer": int,
    "number": (int, float),
}


def validate(instance, node, root, where="$"):
    """Errors of ``instance`` against a JSON Schema ``node``: the keywords the
    report schema uses ($ref, type, const, enum, required, properties,
    additionalProperties, items, minimum)."""
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        return validate(instance, root["$defs"][name], root, where)
    errors = []
    if "type" in node:
        kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
        ok = any(
            isinstance(instance, _TYPES[k])
            and not (k in ("integer", "number") and isinstance(instance, bool))
            for k in kinds
        )
        if not ok:
            return [f"{where}: {instance!r} is not {kinds}"]
    if "const" in node and instance != node["const"]:
        errors.append(f"{where}: {instance!r} != {node['const']!r}")
    if "enum" in node and instance not in node["enum"]:
        errors.append(f"{where}: {instance!r} not in {node['enum']}")
    if "minimum" in node and instance < node["minimum"]:
        errors.append(f"{where}: {instance} < {node['minimum']}")
    if isinstance(instance, dict):
        errors += [f"{where}: missing {k!r}" for k in node.get("required", ())]
        errors = [
            e for e in errors if not e.endswith(tuple(f"{k!r}" for k in instance))
        ]
        props = node.get("properties", {})
        for key, value in instance.items():
            if key in props:
                errors += validate(value, props[key], root, f"{where}.{key}")
            elif node.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected {key!r}")
    if isinstance(instance, list) and "items" in node:
        for i, item in enumerate(instance):
            errors += validate(item, node["items"], root, f"{where}[{i}]")
    return errors


GOOD = """---
settings: linear_gaussian
---

$$ D_{KL}(q \\| p) = \\int q \\log \\frac{q}{p(z|x)} dz $$

```check
kl
= integral(exp(log_q) * (log_q - log_post))
```

$$ \\log p(x) \\ge F(q) $$

$$ \\log p(x) \\le F(q) $$

$$ \\text{remark} $$

```check
unchecked: prose
```
"""


def test_the_validator_catches_a_broken_report():
    root = schema()
    report = {
        "schema_version": SCHEMA_VERSION,
        "strict": True,
        "exit_code": 0,
        "counts": dict.fromkeys(
            ("holds", "fails", "undetermined", "unsupported", "unchecked"), 0
        ),
        "files": [],
        "errors": [],
    }
    assert validate(report, root, root) == []
    for key, bad in [
        ("schema_version", 2),
        ("exit_code", 7),
        ("strict", "yes"),
        ("errors", ["a string, not an object"]),
        ("extra", 1),
    ]:
        assert validate({**report, key: bad}, root, root) != [], key
    missing = dict(report)
    del missing["counts"]
    assert validate(missing, root, root) == ["$: missing 'counts'"]


def test_json_output_validates_against_the_shipped_schema(tmp_path, capsys):
    good = tmp_path / "good.md"
    good.write_text(GOOD)
    bad = tmp_path / "bad.md"
    bad.write_text(GOOD.replace("settings: linear_gaussian", "settings: nonsense"))
    status = main(["verify", "--json", "--seeds", "2", str(good), str(bad)])
    report = json.loads(capsys.readouterr().out)
    root = schema()
    assert validate(report, root, root) == []
    assert status == 2 == report["exit_code"]
    assert report["schema_version"] == 1
    (error,) = report["errors"]
    assert (error["path"], error["line"], error["kind"]) == (str(bad), 2, "malformed")
    assert "unknown setting" in error["message"]
    lines = report["files"][0]["lines"]
    assert [line["verdict"] for line in lines] == [
        "holds",
        "holds",
        "fails",
        "unchecked",
    ]
    first = lines[0]
    assert first["route"] == "direct quadrature" and first["method"] == "block"
    assert first["tolerance"] == 1e-9 and first["margin"] > 0
    assert lines[2]["method"] == "latex" and lines[2]["margin"] < 0


@pytest.mark.parametrize(
    ("replace", "kind", "words"),
    [
        (("settings: linear_gaussian", "settings: nonsense"), "malformed",
         "unknown setting"),
        (("= integral(", "= np.ones((18000, 18000)) + integral("), "limits",
         "the limit is"),
        (("= integral(", "= np.f2py + integral("), "unsupported",
         "np.f2py is not in the check language"),
        (("linear_gaussian\n", "linear_gaussian\nseeds: 1000000000\n"), "limits",
         "seeds must be between"),
        (("= integral(", "= MC_q(log_q, n=10**9).mean + integral("), "limits",
         "draws n must be between"),
    ],
)  # fmt: skip
def test_json_error_kinds_tell_limits_unsupported_and_malformed_apart(
    tmp_path, capsys, replace, kind, words
):
    path = tmp_path / "bad.md"
    text = GOOD.replace(*replace)
    assert text != GOOD
    path.write_text(text)
    status = main(["verify", "--json", "--seeds", "2", str(path)])
    report = json.loads(capsys.readouterr().out)
    root = schema()
    assert validate(report, root, root) == []
    assert status == 2
    (error,) = report["errors"]
    assert error["kind"] == kind and words in error["message"], error
    assert validate({**error, "kind": "other"}, root["$defs"]["error"], root) != []


def test_text_rows_name_verdict_route_and_margin(tmp_path, capsys):
    path = tmp_path / "good.md"
    path.write_text(GOOD)
    assert main(["verify", "--seeds", "2", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    rows = [r for r in out if r.startswith("  L")]
    assert "holds" in rows[0] and "margin +1.00e-09" in rows[0]
    assert rows[0].endswith("[block: direct quadrature]")
    assert " fails " in rows[2] and "margin -" in rows[2]
    assert rows[2].endswith("[latex: quadrature]") or "[latex:" in rows[2]
    assert out[-1].startswith(
        "total: 4 lines: 2 hold, 1 fail, 0 undetermined, 0 unsupported, 1 unchecked"
    )
    assert out[-1].endswith("exit 1: a line fails")


def line(verdict):
    return LineResult(1, "a = b", "=", verdict)


@pytest.mark.parametrize(
    ("verdicts", "strict", "want"),
    [
        (["holds", "holds"], True, 0),
        (["holds", "fails"], True, 1),
        (["fails", "undetermined"], False, 1),
        (["holds", "undetermined"], True, 3),
        (["holds", "undetermined"], False, 0),
        (["holds", "unsupported"], True, 3),
        (["holds", "unchecked"], True, 3),
        (["holds", "unchecked"], False, 0),
        ([], True, 3),  # a file with no displayed line is not a pass
    ],
)
def test_exit_codes(verdicts, strict, want):
    result = FileResult("f.md", [], 3, [line(v) for v in verdicts])
    assert exit_code([result], strict=strict) == want
    assert exit_code([result], errors=[{}], strict=strict) == 2


def test_a_file_with_no_checked_line_says_so(tmp_path, capsys):
    path = tmp_path / "empty.md"
    path.write_text("---\nsettings: linear_gaussian\n---\n\nNo equations here.\n")
    assert main(["verify", str(path)]) == 3
    out = capsys.readouterr().out
    assert f"{path}: no line was checked: nothing holds or fails" in out
    assert main(["verify", "--no-strict", str(path)]) == 0
    assert "no line was checked" in capsys.readouterr().out
