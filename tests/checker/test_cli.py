"""`refvi verify`: report, summary, exit status 0 / 1 / 2 / 3, --json, --seeds,
--strict, --debug."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_latex_integrate import verdict_and_method

from refvi.cli import bundled_derivations, main

ROOT = Path(__file__).resolve().parents[2]

GOOD = """---
settings: linear_gaussian, mixture
---

$$ D_{KL}(q \\| p) = \\int q \\log \\frac{q}{p(z|x)} dz $$

```check
kl
= integral(exp(log_q) * (log_q - log_post))
```

$$ D_{KL}(q \\| p) = \\log p(x) + \\mathbb{E}_q[\\log q - \\log p(x, z)] $$

```check
= log_px + E_q(log_q - log_joint)
```

$$ \\text{remark} $$

```check
unchecked: prose
```
"""


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.md"
    path.write_text(GOOD)
    return path


SUMMARY = "3 lines: 2 hold, 0 fail, 0 undetermined, 0 unsupported, 1 unchecked"


def test_holding_derivation_prints_each_line_and_exits_0_without_strict(good, capsys):
    assert main(["verify", "--no-strict", str(good)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [row for row in out if row.strip().startswith("L")]
    assert [row.split()[0] for row in rows] == ["L5", "L12", "L18"]
    # verdict, deviation, its error estimate (the quadrature's), tolerance,
    # margin, front end and routes
    words = rows[0].split()
    assert words[-12:] == [
        "=", "holds", "dev", words[-9], words[-8], "tol", "1e-09", "margin",
        "+1.00e-09", "[block:", "direct", "quadrature]",
    ]  # fmt: skip
    assert words[-8].startswith("±")
    assert "D_{KL}(q \\| p) = \\int" in rows[0]
    assert "unchecked: prose" in rows[2]
    assert out[-2] == f"  {good}: {SUMMARY}"
    assert out[-1] == f"total: {SUMMARY} (1 files); exit 0: no line fails"


def test_strict_is_the_default_an_unchecked_line_exits_3(good, capsys):
    assert main(["verify", str(good)]) == 3
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (
        f"total: {SUMMARY} (1 files); exit 3: strict: a line is not shown to hold"
    )


def test_failing_line_is_marked_and_exits_1(tmp_path, capsys):
    path = tmp_path / "bad.md"
    path.write_text(GOOD.replace("= log_px + E_q", "= log_px - E_q"))
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    row = next(r for r in out.splitlines() if r.strip().startswith("L12"))
    assert row.split()[-10:-8] == ["=", "fails"]
    assert float(row.split()[-3]) < 0  # the margin
    assert "3 lines: 1 hold, 1 fail, 0 undetermined" in out
    assert main(["verify", "--no-strict", str(path)]) == 1


def test_a_value_that_is_not_finite_is_undetermined_exit_3_under_strict(
    tmp_path, capsys
):
    path = tmp_path / "nan.md"
    path.write_text(GOOD.replace("= log_px + E_q", "= np.log(-1 + 0 * log_px) + E_q"))
    assert main(["verify", str(path)]) == 3
    out = capsys.readouterr().out
    row = next(r for r in out.splitlines() if r.strip().startswith("L12"))
    assert " undetermined " in row and "error:" not in out
    assert "value is not finite" in out
    assert "3 lines: 1 hold, 0 fail, 1 undetermined" in out
    assert main(["verify", "--no-strict", str(path)]) == 0


def test_json_report(good, capsys):
    assert main(["verify", "--json", "--seeds", "2", str(good)]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["schema_version"] == 1 and report["exit_code"] == 3
    assert report["counts"] == {
        "holds": 2, "fails": 0, "undetermined": 0, "unsupported": 0, "unchecked": 1
    }  # fmt: skip
    (entry,) = report["files"]
    assert entry["seeds"] == 2 and entry["settings"] == ["linear_gaussian", "mixture"]
    assert [line["line"] for line in entry["lines"]] == [5, 12, 18]
    line = entry["lines"][1]
    assert (line["relation"], line["verdict"], line["route"]) == (
        "=",
        "holds",
        "quadrature",
    )
    assert line["tolerance"] == 1e-9 and line["deviation"] < 1e-12
    assert 0 < line["error"] <= 2e-10  # each side refined to a tenth of tol
    assert entry["lines"][2]["verdict"] == "unchecked"
    assert entry["lines"][2]["reason"] == "prose"
    assert report["errors"] == []


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (GOOD.replace("```check\n= log_px", "\n= log_px"), 12, "no check block"),
        (GOOD.replace("linear_gaussian, mixture", "nonsense"), 2, "unknown setting"),
        (GOOD.replace("= log_px + E_q", "= log_px + * E_q"), 15, "syntax error"),
        (GOOD.replace("log_joint)", "log_joint) + np.zeros((3, 2))"), 15, "shapes"),
        (GOOD.replace("kl\n", "nope\n"), 8, "unknown name 'nope'"),
    ],
)
def test_malformed_input_one_line_error_exit_2(tmp_path, capsys, text, line, message):
    path = tmp_path / "bad.md"
    path.write_text(text)
    assert main(["verify", "--blocks-only", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"{path}:{line}: error: ")
    assert message in err[0]
    assert "Traceback" not in err[0]


def test_a_display_without_a_block_is_checked_from_its_latex(tmp_path, capsys):
    path = tmp_path / "latex.md"
    path.write_text(
        "---\nsettings: linear_gaussian, mixture\n---\n\n"
        "$$ D_{KL}(q(z|x) \\| p(z|x)) = \\log p(x) - F(q) $$\n\n"
        "```check\nkl\n= log_px - E_q(log_joint - log_q)\n```\n\n"
        "$$ D_{KL}(q(z|x) \\| p(z|x)) = \\log p(x) + "
        "\\mathbb{E}_{q(z|x)}[\\log q(z|x) - \\log p(x, z)] $$\n"
    )
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    rows = [r for r in out.splitlines() if r.strip().startswith("L")]
    assert [verdict_and_method(r) for r in rows] == [
        ("holds", "block"),
        ("holds", "latex"),
    ]
    assert main(["verify", "--blocks-only", str(path)]) == 2
    assert f"{path}:12: error: displayed equation has no check block" in (
        capsys.readouterr().err
    )


def test_blocks_only_and_latex_only_exclude_each_other(good, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["verify", "--blocks-only", "--latex-only", str(good)])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path, capsys):
    path = tmp_path / "bad.md"
    path.write_text(GOOD.replace("kl\n", "kl[7]\n"))
    assert main(["verify", "--debug", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and f"{path}:8: error: IndexError" in err


def test_missing_file_is_an_error(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "absent.md")]) == 2
    assert "cannot read file" in capsys.readouterr().err


def test_seeds_must_be_positive(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["verify", "--seeds", "0"])
    assert stop.value.code == 2


def test_bundled_derivations_are_the_shipped_markdown_files():
    names = [p.name for p in bundled_derivations()]
    expected = sorted(
        p.name for p in (ROOT / "derivations").glob("*.md") if p.name != "README.md"
    )
    assert names == expected
    for name in ("elbo_identity.md", "em.md", "aggregated_posterior.md"):
        assert name in names


def test_verify_of_the_seed_based_derivations_holds_in_a_subprocess(tmp_path):
    # From an empty folder: a clone folder named refvi in the working directory
    # would otherwise shadow the installed package.
    paths = [
        str(ROOT / "derivations" / name)
        for name in ("elbo_identity.md", "em.md", "aggregated_posterior.md")
    ]
    done = subprocess.run(
        [sys.executable, "-m", "refvi", "verify", *paths],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == (
        "total: 33 lines: 33 hold, 0 fail, 0 undetermined, 0 unsupported, "
        "0 unchecked (3 files); exit 0: every line holds"
    )
