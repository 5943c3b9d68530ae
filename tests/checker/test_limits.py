# ruff: noqa: E501  (the table of cases reads best one per line)
"""The limits of `refvi verify` (refvi.checker.limits): each exceeded limit is
one ``file:line: error:`` line and exit 2, and input near a limit gets its
correct verdict; never a traceback, never a hang.

Each case runs ``refvi verify`` in this process and asserts the refusal
message that ended it: the refusals happen before any work, so a case that
reached its work would end differently (the check's time limit, shown below
to be one ``file:line`` error itself with a tiny budget set through the
limit's own parameter). No test measures its own time.
"""

import numpy as np
import pytest

from refvi.checker import limits
from refvi.checker.derivation import make_instance, parse
from refvi.checker.evaluate import Refused, compile_check, evaluate
from refvi.cli import main


def doc(body, settings="linear_gaussian", extra=""):
    return f"---\nsettings: {settings}\n{extra}---\n\n{body}"


def block(latex, *lines):
    return f"$$ {latex} $$\n\n```check\n" + "\n".join(lines) + "\n```\n"


HOLDS = block("a = a", "log_px", "= log_px")
FAILS = block("a = a + 1", "log_px", "= log_px + 1")


def _run(capsys, *argv):
    try:
        status = main(["verify", *map(str, argv)])
    except SystemExit as exit:  # argparse refusing an option
        status = exit.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


CASES = [
    ("tolerance-inf", doc(FAILS, extra="tolerance: inf\n"), 2, ":3: error: tolerance must be finite and positive"),
    ("tolerance-large", doc(FAILS, extra="tolerance: 0.5\n"), 2, ":3: error: tolerance must be at most 0.01"),
    ("tol-nan", doc(block("a = a + 1", "tol: nan", "log_px", "= log_px + 1")), 2, ":8: error: tol must be finite and positive"),
    ("tol-negative", doc(block("a = a + 1", "tol: -1", "log_px", "= log_px + 1")), 2, ":8: error: tol must be finite and positive"),
    ("tol-inf", doc(block("a = a + 1", "tol: inf", "log_px", "= log_px + 1")), 2, ":8: error: tol must be finite"),
    ("separation-nan", doc(HOLDS, extra="separation: nan\n"), 2, ":3: error: separation must be finite"),
    ("sigmas-huge", doc(HOLDS, extra="sigmas: 1e300\n"), 2, ":3: error: sigmas must be at most 10"),
    ("sigmas-inf", doc(HOLDS, extra="sigmas: inf\n"), 2, ":3: error: sigmas must be finite"),
    ("seeds-huge", doc(HOLDS, extra="seeds: 1000000000\n"), 2, ":3: error: seeds must be between 1 and 1000"),
    ("setting-d", doc(HOLDS, settings="linear_gaussian(d=100000)"), 2, ":2: error: setting linear_gaussian: d must be between 1 and 20"),
    ("setting-K", doc(HOLDS, settings="mixture(K=100000)"), 2, ":2: error: setting mixture: K must be between 1 and 50"),
    ("ones", doc(block("a = b", "np.ones((18000, 18000))")), 2, ":8: error: np.ones would make 3.24e+08 elements"),
    ("int-power", doc(block("a = b", "10**10**8")), 2, ":8: error: integer ** would have about"),
    ("range-sum", doc(block("a = b", "sum(range(10**11))")), 2, ":8: error: range would make 1e+11 elements"),
    ("unary-minus", doc(block("a = b", "-" * 100_000 + "1")), 2, ":8: error: expression of 100001 characters"),
    ("deep-calls", doc(block("a = b", "abs(" * 150 + "1" + ")" * 150)), 2, ":8: error: expression nests more than 100 deep"),
    ("latex-braces", doc("$$ " + "{" * 150 + "x" + "}" * 150 + " = x $$\n"), 2, ":5: error: brackets nest more than 50 deep"),
    ("latex-tokens", doc("$$ " + " + ".join(["x"] * 20000) + " = x $$\n"), 2, ":5: error: more than 2000 tokens in one display"),
    ("displays", doc(block("a = a", "log_px", "= log_px") * 1001), 2, ":6005: error: more than 1000 displayed equations"),
    ("thousand-terms", doc(block("a = b", " + ".join(["log_px"] * 1000), "= 1000 * log_px")), 0, None),
    ("thousand-terms-wrong", doc(block("a = b", " + ".join(["log_px"] * 1000), "= 999 * log_px")), 1, None),
    ("deep-parens", doc(block("a = b", "(" * 150 + "log_px" + ")" * 150, "= log_px")), 0, None),
    ("bom", "\ufeff" + doc(HOLDS), 0, None),
]  # fmt: skip


@pytest.mark.parametrize(("text", "status", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_limit_is_one_error_line_or_a_correct_verdict(
    text, status, message, tmp_path, capsys
):
    path = tmp_path / "t.md"
    path.write_text(text, encoding="utf-8")
    got, out, err = _run(capsys, path)
    assert got == status, out + err
    if message is None:
        assert err == ""
    else:
        assert len(err.splitlines()) == 1
        assert err.startswith(f"{path}{message}"), err


def test_seeds_option_is_bounded(tmp_path, capsys):
    path = tmp_path / "t.md"
    path.write_text(doc(HOLDS))
    status, _, err = _run(capsys, "--seeds", "100000000", path)
    assert status == 2
    assert "--seeds must be between 1 and 1000; got 100000000" in err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/dev/zero", ":1: error: is not a regular file (a device, pipe or socket)"),
        ("folder", ":1: error: is a directory"),
        ("missing.md", ":1: error: cannot read file: No such file or directory"),
        ("big.md", ":1: error: file is larger than 10 MB"),
        ("latin1.md", ":5: error: file is not UTF-8 text"),
    ],
)
def test_files_that_cannot_be_read_are_one_error_at_line_1(
    target, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "big.md").write_text(doc(HOLDS) + " " * limits.MAX_FILE_BYTES)
    (tmp_path / "latin1.md").write_bytes(doc("caf\xe9\n").encode("latin-1"))
    status, _, err = _run(capsys, target)
    assert status == 2
    assert len(err.splitlines()) == 1
    assert err.startswith(f"{target}{message}")


def test_setting_size_limits_are_refused_by_the_latex_front_end_too(tmp_path, capsys):
    path = tmp_path / "t.md"
    path.write_text(doc("$$ \\log p(x) = \\log p(x) $$\n", "linear_gaussian(d=100000)"))
    status, _, err = _run(capsys, "--latex-only", path)
    assert status == 2
    assert "d must be between 1 and 20" in err


def test_the_time_limit_is_one_error_line_naming_file_and_line(
    tmp_path, capsys, monkeypatch
):
    """With the limit's own parameter set to 1 microsecond of computing, an
    honest check that sums a range is refused at its line (exit 2); with the
    default limit the same file holds."""
    path = tmp_path / "t.md"
    path.write_text(doc(block("a = a", "log_px + 0 * sum(range(10**5))", "= log_px")))
    assert _run(capsys, path)[0] == 0
    monkeypatch.setattr(limits, "CHECK_SECONDS", 1e-6)
    status, _, err = _run(capsys, path)
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"{path}:8: error: the check ran longer than 1e-06 s")


def test_a_check_past_its_time_is_refused():
    tree, _ = compile_check(" + ".join(["sum(range(10**6))"] * 500))
    with pytest.raises(Refused, match="longer than 0.2 s"):
        evaluate(tree, {}, seconds=0.2)


def test_a_lambda_called_by_a_setting_is_timed_too():
    """The deadline reaches into the lambdas an operator (here E_q) calls."""
    instance = make_instance("linear_gaussian", (), 0)
    body = " + ".join(["sum(range(10**6))"] * 500)
    tree, _ = compile_check(f"E_q(lambda z: z[..., 0] * ({body}))")
    with pytest.raises(Refused, match="longer than"):
        evaluate(tree, instance.names, seconds=0.2)


def test_sizes_just_under_the_limit_are_accepted():
    tree, _ = compile_check("np.zeros((1000, 10000)).sum() + len(range(10**7))")
    assert evaluate(tree, {}) == 10**7
    tree, _ = compile_check("np.zeros((1000, 10001))")
    with pytest.raises(Refused, match="np.zeros would make"):
        evaluate(tree, {})


def test_front_matter_numbers_at_their_bounds_parse():
    text = doc(HOLDS, extra="tolerance: 1e-2\nsigmas: 10\nseeds: 1000\n")
    derivation = parse(text, "t.md")
    assert (derivation.tolerance, derivation.sigmas, derivation.seeds) == (
        1e-2,
        10.0,
        1000,
    )
    assert np.isfinite(derivation.separation)
