"""`refvi cases`: the JSON round-trips through nothing but the json module, and
matches its JSON Schema; --list and --out; errors in one line."""

import json
import re

import numpy as np
import pytest

from refvi.cli import main
from refvi.crosscheck import all_cases, evaluate, from_json, json_schema, to_json


def _run(capsys, *argv):
    code = main(["cases", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cases_json_round_trips_through_the_json_module_to_1e_12(capsys):
    code, out, _ = _run(capsys, "--json")
    assert code == 0
    doc = json.loads(out)  # the standard json module only
    assert doc["schema"] == "refvi-cases" and doc["schema_version"] == 1
    assert len(doc["cases"]) == len(all_cases())
    worst = 0.0
    for obj in doc["cases"]:
        inputs = {k: np.array(v["data"], dtype=float) for k, v in obj["inputs"].items()}
        got = evaluate(obj["quantity"], inputs, obj["options"])
        assert set(got) == set(obj["outputs"])
        for name, ref in obj["outputs"].items():
            ref_arr = np.array(ref["data"], dtype=float)
            assert list(ref_arr.shape) == ref["shape"]
            scale = max(np.max(np.abs(ref_arr)), 1e-300)
            worst = max(worst, float(np.max(np.abs(got[name] - ref_arr)) / scale))
    print(f"round trip: worst normwise relative difference {worst:.3g}")
    assert worst <= 1e-12


def test_from_json_reads_back_the_exact_cases():
    cases = all_cases()
    for old, new in zip(cases, from_json(to_json(cases)), strict=True):
        assert new.name == old.name and new.options == old.options
        for k in old.inputs:
            assert np.array_equal(new.inputs[k], old.inputs[k])
        for k in old.outputs:
            assert np.array_equal(new.outputs[k], old.outputs[k])
            assert new.rtol[k] == old.rtol[k]


def _validate(instance, schema, root, where="$"):
    """A small JSON Schema validator for the keywords cases_schema.json uses."""
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return _validate(instance, root["$defs"][name], root, where)
    types = {"object": dict, "array": list, "string": str, "integer": int}
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        ok = any(
            isinstance(instance, (int, float)) and not isinstance(instance, bool)
            if k == "number"
            else isinstance(instance, types[k])
            for k in kinds
        )
        assert ok, f"{where}: not of type {kinds}"
    if "const" in schema:
        assert instance == schema["const"], f"{where}: not {schema['const']!r}"
    if "oneOf" in schema:
        passed = 0
        for sub in schema["oneOf"]:
            try:
                _validate(instance, sub, root, where)
                passed += 1
            except AssertionError:
                pass
        assert passed == 1, f"{where}: matches {passed} of oneOf"
    if "pattern" in schema:
        assert re.search(schema["pattern"], instance), f"{where}: bad pattern"
    if "minimum" in schema:
        assert instance >= schema["minimum"], f"{where}: below minimum"
    if "exclusiveMinimum" in schema:
        assert instance > schema["exclusiveMinimum"], f"{where}: not above minimum"
    if isinstance(instance, dict):
        for key in schema.get("required", ()):
            assert key in instance, f"{where}: missing {key!r}"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if key in props:
                _validate(value, props[key], root, f"{where}.{key}")
            elif extra is False:
                raise AssertionError(f"{where}: unexpected {key!r}")
            elif isinstance(extra, dict):
                _validate(value, extra, root, f"{where}.{key}")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            _validate(item, schema["items"], root, f"{where}[{i}]")


def test_the_document_matches_its_json_schema():
    schema = json_schema()
    doc = json.loads(to_json(all_cases()))
    _validate(doc, schema, schema)
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.validate(doc, schema)


def test_the_schema_check_catches_a_malformed_document():
    schema = json_schema()
    doc = json.loads(to_json(all_cases()[:1]))
    doc["cases"][0]["outputs"]["value"].pop("rtol")
    with pytest.raises(AssertionError, match="missing 'rtol'"):
        _validate(doc, schema, schema)
    doc = json.loads(to_json(all_cases()[:1]))
    doc["cases"][0]["inputs"]["mean_q"]["data"] = "1.0"
    with pytest.raises(AssertionError, match="oneOf"):
        _validate(doc, schema, schema)


def test_from_json_refuses_another_schema_or_version_and_bad_shapes():
    doc = json.loads(to_json(all_cases()[:1]))
    with pytest.raises(ValueError, match="refvi-cases"):
        from_json({"schema": "other"})
    with pytest.raises(ValueError, match="schema_version 2"):
        from_json({**doc, "schema_version": 2})
    doc["cases"][0]["inputs"]["mean_q"]["shape"] = [9]
    with pytest.raises(ValueError, match="input mean_q has data of shape"):
        from_json(doc)


def test_list_names_every_case_and_patterns_select(capsys):
    code, out, _ = _run(capsys, "--list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [
        c.name for c in all_cases()
    ]
    code, out, _ = _run(capsys, "--list", "mixture.em_step.*", "vae.elbo.ordinary")
    assert len(out.splitlines()) == 5


def test_out_writes_one_file_per_case_and_the_schema(tmp_path, capsys):
    code, out, _ = _run(capsys, "--out", str(tmp_path), "gaussian.kl_full.*")
    assert code == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "cases_schema.json" in files
    assert "gaussian.kl_full.cond-1e10.json" in files
    assert len(files) == 5
    case = from_json((tmp_path / "gaussian.kl_full.ordinary.json").read_text())[0]
    assert case.name == "gaussian.kl_full.ordinary"
    assert json.loads((tmp_path / "cases_schema.json").read_text()) == json_schema()


def test_an_unknown_name_is_one_line_and_exit_2(capsys):
    code, out, err = _run(capsys, "--json", "no.such.case")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "'no.such.case'" in err


def test_schema_prints_the_json_schema(capsys):
    code, out, _ = _run(capsys, "--schema")
    assert code == 0 and json.loads(out) == json_schema()
