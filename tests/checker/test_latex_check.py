"""Checking derivations from their LaTeX alone (refvi.checker.latex.check):
the hand-made corpus with known verdicts, the seed derivation, the CLI."""

import re
from pathlib import Path

import pytest

from refvi import cli
from refvi.checker.latex import check_latex_file, check_latex_text
from refvi.checker.latex.check import corpus_summary, format_result

CORPUS = Path(__file__).parent / "latex_corpus"
SEED = CORPUS / "seed_variational_encoding.md"
HAND_MADE = sorted(p for p in CORPUS.glob("*.md") if p != SEED)


def expected(path):
    """The verdicts written after each display as <!-- expect: a, b -->."""
    found = re.findall(r"<!-- expect: (.*?) -->", path.read_text())
    return [s.strip() for item in found for s in item.split(",")]


def test_corpus_is_large_enough_and_plants_errors():
    assert len(HAND_MADE) >= 20
    verdicts = [v for p in HAND_MADE for v in expected(p)]
    assert verdicts.count("fails") >= 20 and verdicts.count("holds") >= 40


@pytest.fixture(scope="module")
def corpus_results():
    return {p: check_latex_file(p) for p in HAND_MADE}


def test_corpus_verdicts_line_by_line(corpus_results):
    for path, result in corpus_results.items():
        got = [r.status for r in result.lines]
        assert got == expected(path), f"{path.name}\n{format_result(result)}"


def test_corpus_precision_recall_and_separation(corpus_results, capsys):
    pairs = [
        (want, r)
        for path, result in corpus_results.items()
        for want, r in zip(expected(path), result.lines, strict=True)
    ]
    s = corpus_summary(pairs)
    assert s.precision == 1.0 and s.recall == 1.0
    # every failing '=' deviates by far more than any holding '=' does
    assert s.smallest_failing > 1e3 * s.largest_holding
    with capsys.disabled():
        print("\n" + s.text)


def test_seed_derivation_line_by_line():
    result = check_latex_file(SEED)
    by_line = {}
    for r in result.lines:
        by_line.setdefault(r.line, []).append(r)
    status = {line: [r.status for r in rs] for line, rs in by_line.items()}
    assert status == {
        18: ["expression"],  # D_KL(q || p(z|x)) on its own
        25: ["holds"],
        27: ["fails"],  # ambiguous: log takes the fraction, p(x) multiplies it
        29: ["holds"],
        31: ["fails"],  # p(x, z) replaced by p(x) p(z)
        33: ["holds"],
        35: ["holds"],
        40: ["holds"],
        50: ["holds"],  # the aggregated posterior, as declared
        56: ["holds", "holds", "fails"],  # int p(z|x) p_data(x) dx is not p(z)
    }
    (line31,) = by_line[31]
    assert line31.hint == "D_KL(q || p(z)), the KL to the prior"
    (line27,) = by_line[27]
    assert [st for _, st, _ in line27.readings] == ["fails", "holds"]
    assert line27.hint.startswith("-p(x) ELBO")
    assert any(":27: ambiguous" in w for w in result.warnings)
    neq, last = by_line[56][1], by_line[56][2]
    assert [(n, st) for n, st, _ in neq.assumptions] == [
        ("misspecified model", "holds"),
        ("well-specified", "holds"),
        ("exact posterior", "fails"),  # q = p(z|x): the two integrals agree
    ]
    assert [(n, st) for n, st, _ in last.assumptions] == [
        ("misspecified model", "fails"),
        ("well-specified", "holds"),  # p_data = p_theta(x)
        ("exact posterior", "fails"),
    ]
    assert last.hint.startswith("int p(z|x) p_theta(x) dx")
    report = format_result(result)
    assert "line 31 fails; its value equals D_KL(q || p(z))" in report


def test_unsupported_line_is_reported_and_the_rest_checked():
    text = (
        "---\n---\n$$ \\partial \\mathcal{L} = 0 $$\n\n"
        "$$ \\log p(x) \\ge \\mathrm{ELBO} $$\n"
    )
    result = check_latex_text(text, "mem.md")
    assert [r.status for r in result.lines] == ["unsupported", "holds"]
    assert "'\\partial'" in result.lines[0].reason and result.lines[0].line == 3


def test_without_a_non_gaussian_setting_one_is_added():
    text = "---\nsettings: linear_gaussian(k=1)\n---\n"
    text += "$$ H[p(z)] = \\frac{1}{2}\\log(2\\pi e) $$\n"
    (r,) = check_latex_text(text).lines
    assert r.status == "fails" and r.failing.startswith("mixture_prior")
    assert "the non-Gaussian setting added" in r.failing  # named as added
    pinned = text.replace("---\n$$", "pinned: true\n---\n$$")
    (r,) = check_latex_text(pinned).lines
    assert r.status == "holds" and r.skipped is None


def test_a_failing_line_names_the_point_by_what_the_setting_holds():
    pointwise = "$$ \\log p(x) = \\log q(x) $$\n"
    (r,) = check_latex_text("---\nsettings: gaussian\n---\n" + pointwise).lines
    assert r.status == "fails" and " at test point " in r.failing
    assert "datum" not in r.failing  # the two densities hold no data
    front = "---\nsettings: mixture_pair\nlatent: x\nobserved: y\n---\n"
    (r,) = check_latex_text(front + "$$ \\log g(x) = \\log f(x) $$\n").lines
    assert r.status == "fails" and " at test point " in r.failing
    text = "---\nsettings: linear_gaussian\n---\n$$ \\log p(x) = \\log p(x|z) $$\n"
    (r,) = check_latex_text(text).lines
    assert r.status == "fails" and " at datum " in r.failing


def main(argv):
    """``refvi verify --latex-only``: the LaTeX front end through the one CLI."""
    return cli.main(["verify", "--latex-only", *argv])


@pytest.mark.parametrize(
    "body, line, match",
    [
        ("$$ \\frac{a}{b $$", 4, "unbalanced"),
        ("$$ \\left[ a \\right) $$", 4, "unbalanced"),
        ("$$\n\\begin{matrix} a \\end{matrix}\n$$", 5, "unknown environment"),
        ("$$ $$", 4, "empty equation"),
    ],
)
def test_malformed_latex_exits_2_with_file_and_line(
    tmp_path, capsys, body, line, match
):
    path = tmp_path / "bad.md"
    path.write_text("---\nsettings: linear_gaussian\n---\n" + body + "\n")
    assert main([str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"{path}:{line}: error: ") and match in err[0]
    result = check_latex_file(path)  # an error of that display only, its line
    ((at, message),) = result.errors
    assert not result.lines and at == line and match in message


def test_cli_exit_status_and_explain(capsys):
    assert main([str(CORPUS / "elbo_chain.md"), "--explain"]) == 0
    out = capsys.readouterr().out
    assert "E_{z ~ q(z|x)}[log[p(x,z)]]" in out and "scalar of (x)" in out
    assert main([str(CORPUS / "sign_error_kl.md")]) == 1


def test_an_internal_error_leaves_the_line_unchecked_not_a_crash(monkeypatch):
    from refvi.checker.latex import check

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(check, "make_model", broken)
    text = "---\n---\n$$ \\log p(x) \\ge \\mathrm{ELBO} $$\n\n"
    text += "$$ \\mathcal{L} := \\mathrm{ELBO} $$\n"
    lines = check_latex_text(text).lines
    assert [r.status for r in lines] == ["unsupported", "definition"]
    assert lines[0].reason == "cannot evaluate: RuntimeError: boom"


def test_a_setting_without_the_lines_densities_is_left_out_while_another_remains():
    line = "$$ \\log p(x) \\ge \\mathrm{ELBO} $$\n"
    (r,) = check_latex_text("---\nsettings: gaussian, mixture\n---\n" + line).lines
    assert r.status == "holds"
    (r,) = check_latex_text("---\nsettings: categorical\n---\n" + line).lines
    assert r.status == "unsupported" and "categorical" in r.reason


def test_an_undecided_line_is_refined_not_left_undetermined(monkeypatch):
    """With a coarse first rule (h = sigma and 1.25 sigma) the error estimate of
    the KL identity is too large to decide; the front end evaluates it again
    on the finer rule (h = sigma / 8, sigma / 5) and decides. Without the
    refinement the same line stays undetermined, and a wrong line still
    fails after it."""
    from refvi.checker.latex import check, models

    text = (
        "---\nsettings: linear_gaussian(k=1)\npinned: true\n---\n"
        "$$ \\log p(x) = \\mathcal{L} + D_{KL}(q(z|x) \\| p(z|x)) $$\n\n"
        "$$ \\log p(x) = \\mathcal{L} - D_{KL}(q(z|x) \\| p(z|x)) $$\n"
    )
    monkeypatch.setattr(models, "_STEPS", (1.0, 0.8, 8.0, 5.0))
    for refined, want in (((0, 1), "undetermined"), ((2, 3), "holds")):
        models.make_model.cache_clear()  # models hold their rules
        monkeypatch.setattr(check, "REFINED", refined)
        good, bad = check_latex_text(text).lines
        assert (good.status, bad.status) == (want, "fails")
    models.make_model.cache_clear()


def test_a_failing_line_shows_the_instance_and_both_sides():
    text = "---\nsettings: mixture\n---\n$$ \\log p(x) = \\log p(x) + 1 $$\n"
    (r,) = check_latex_text(text).lines
    m = re.search(
        r"on (mixture/\d+)(?: at datum \d)?: left (\S+), right (\S+)", r.failing
    )
    assert r.status == "fails" and m, r.failing
    left, right = float(m.group(2).rstrip(",")), float(m.group(3))
    assert abs(right - left - 1.0) < 1e-5


def test_a_prose_definition_is_a_note_not_a_line():
    result = check_latex_file(CORPUS / "prose_definitions.md")
    noted = [n for n in result.notes if "in the prose" in n]
    assert [n.split(":")[0] for n in noted] == ["line 11", "line 22", "line 23"]
    assert all(r.line not in (11, 22, 23, 40, 49, 50) for r in result.lines)
