"""Files as people keep them: notebooks (their Markdown cells), directories,
and a malformed display among many (refvi verify)."""

import json
from pathlib import Path

import pytest

from refvi import cli
from refvi.checker.notebook import markdown_of

GOOD = r"$$ \log p(x) = \mathcal{L} + D_{KL}(q(z|x) \| p(z|x)) $$"
BAD = r"$$ \log p(x) = \mathcal{L} - D_{KL}(q(z|x) \| p(z|x)) $$"


def _rows(out, verdict):
    """The report rows whose verdict is ``verdict`` (``holds``, ``fails``,
    or ``unsupported:`` / ``unchecked:`` with their reason)."""
    return [
        r
        for r in out.splitlines()
        if f" {verdict}  " in r and " dev " in r or f" {verdict} " in r[50:]
    ]


def notebook(*cells):
    return json.dumps(
        {
            "cells": [{"cell_type": kind, "source": src} for kind, src in cells],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def test_markdown_cells_in_order_with_their_cell_and_line():
    text, cells = markdown_of(
        notebook(
            ("markdown", ["# A\n", "\n", GOOD]),
            ("code", "x = 1"),
            ("markdown", "text\n" + BAD),
        )  # fmt: skip
    )
    lines = text.splitlines()
    assert lines[2] == GOOD and lines[5] == BAD
    assert cells.where(3) == "cell 1, line 3" and cells.where(6) == "cell 3, line 2"


def test_refvi_verify_reports_a_notebook_by_cell_and_line(tmp_path, capsys):
    path = tmp_path / "n.ipynb"
    path.write_text(
        notebook(
            ("raw", "---\nsettings: linear_gaussian\n---"),
            ("markdown", GOOD),
            ("code", "import numpy"),
            ("markdown", "Wrong:\n\n" + BAD),
        )  # fmt: skip
    )
    assert cli.main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "cell 2, line 1:" in out and "cell 4, line 3:" in out
    assert len(_rows(out, "fails")) == 1


def test_every_report_format_names_a_notebooks_cell_and_line(tmp_path, capsys):
    """JSON: ``cell`` and the line in it; JUnit: ``cell N, line M``; GitHub
    annotations: the line of the .ipynb file itself (its JSON) that holds
    the wrong line; a malformed display: its cell and line too."""
    path = tmp_path / "n.ipynb"
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {"cell_type": "markdown", "source": ["# A\n", "\n", GOOD]},
                    {"cell_type": "code", "source": ["x = 1\n"]},
                    {
                        "cell_type": "markdown",
                        "source": ["Wrong:\n", "\n", BAD + "\n", "\n", "$$ ( $$"],
                    },
                ],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            },
            indent=1,
        )  # fmt: skip
    )
    item = json.dumps(BAD + "\n") + ","
    (bad_at,) = [i for i, t in enumerate(path.read_text().splitlines(), 1)
                 if t.strip() == item]  # fmt: skip
    assert cli.main(["verify", "--json", str(path)]) == 2
    report = json.loads(capsys.readouterr().out)
    lines = report["files"][0]["lines"]
    assert [(x["cell"], x["line"], x["verdict"]) for x in lines] == [
        (1, 3, "holds"),
        (3, 3, "fails"),
    ]
    (error,) = report["errors"]
    assert (error["cell"], error["line"], error["kind"]) == (3, 5, "malformed")
    cli.main(["verify", "--format", "junit", str(path)])
    assert 'name="cell 3, line 3: ' in capsys.readouterr().out
    cli.main(["verify", "--format", "github", str(path)])
    (annotation,) = [
        a for a in capsys.readouterr().out.splitlines() if a.startswith("::error file")
    ]
    assert f",line={bad_at}," in annotation


def test_a_directory_stands_for_its_derivations(tmp_path, capsys):
    (tmp_path / "notes" / ".ipynb_checkpoints").mkdir(parents=True)
    front = "---\nsettings: linear_gaussian\n---\n\n"
    (tmp_path / "notes" / "a.md").write_text(front + GOOD + "\n")
    (tmp_path / "notes" / "b.md").write_text(
        front + "\\[ \\log p(x) \\ge \\mathcal{L} \\]\n"
    )
    (tmp_path / "notes" / ".ipynb_checkpoints" / "c.md").write_text(front + BAD)
    (tmp_path / "notes" / "README.md").write_text("About these notes: " + BAD)
    assert cli.main(["verify", str(tmp_path / "notes")]) == 0
    out = capsys.readouterr().out
    assert "a.md" in out and "b.md" in out and "c.md" not in out
    assert "README" not in out  # a folder's README describes it
    assert "total: 2 lines: 2 hold, 0 fail, 0 undetermined, 0 unsupported, " in out
    assert "0 unchecked (2 files)" in out


def test_one_malformed_display_in_twenty_leaves_nineteen_checked(tmp_path, capsys):
    body = [GOOD] * 20
    body[7] = r"$$ \log p(x) = \mathcal{L} + D_{KL}(q(z|x) \| p(z|x) $$"
    path = tmp_path / "twenty.md"
    path.write_text(
        "---\nsettings: linear_gaussian\n---\n\n" + "\n\n".join(body) + "\n"
    )
    assert cli.main(["verify", str(path)]) == 2
    captured = capsys.readouterr()
    assert "19 lines: 19 hold, 0 fail, 0 undetermined, 0 unsupported" in captured.out
    (bad,) = [r for r in captured.out.splitlines() if "error:" in r]
    assert bad == "  L19    error: unbalanced brackets: '(' is never closed"
    assert captured.err.strip() == (
        f"{path}:19: error: unbalanced brackets: '(' is never closed"
    )


SEED = Path(__file__).parent / "latex_corpus" / "wild" / "seed_as_written.md"


def test_the_seed_as_its_author_wrote_it(capsys):
    """Hugo front matter, no refvi keys: every line read, both wrong lines of
    the KL chain flagged with their hints, the aggregated-posterior line
    reported with its assumptions."""
    assert cli.main(["verify", str(SEED)]) == 1
    out = capsys.readouterr().out
    assert "note: front-matter keys ignored (not refvi's): math, draft" in out
    assert "checked on linear_gaussian, mixture_prior (continuous z)" in out
    assert "checked on aggregated, p(x) = p_data(x)" in out
    rows = [r for r in out.splitlines() if r.startswith("  L")]
    failing = [r.split()[0] for r in _rows(out, "fails")]
    assert failing == ["L24", "L28", "L53"]
    assert "line 24 fails; its value equals -p(x) ELBO" in out
    assert "line 28 fails; its value equals D_KL(q || p(z)), the KL to the prior" in out
    assert "line 53 fails; its value equals int p(z|x) p_theta(x) dx" in out
    assert "assuming well-specified: holds" in out
    unchecked = [r for r in rows if "unchecked:" in r]
    assert len(unchecked) == 1 and "an expression without a relation" in unchecked[0]


FRONT = {
    "hugo": '---\ntitle: "Notes"\ndate: 2024-01-02\ndraft: false\nmath: true\n'
    'tags: ["vi", "elbo"]\n---\n',
    "jekyll": "---\nlayout: post\ntitle: Notes\ncategories:\n  - ml\n  - vi\n---\n",
    "quarto": '---\ntitle: "Notes"\nformat:\n  html:\n    toc: true\n'
    "jupyter: python3\n---\n",
    "refvi key": "---\ntitle: Notes\nrefvi:\n  settings: linear_gaussian\n"
    "  seeds: 2\nlayout: post\n---\n",
    "none": "",
}


@pytest.mark.parametrize("style", sorted(FRONT))
def test_front_matter_of_static_site_generators(tmp_path, capsys, style):
    path = tmp_path / "notes.md"
    path.write_text(FRONT[style] + "\n" + GOOD + "\n\n" + BAD + "\n")
    assert cli.main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "2 lines: 1 hold, 1 fail, 0 undetermined, 0 unsupported, 0 unch" in out
    if style == "refvi key":
        assert "[linear_gaussian; 2 seeds each]" in out
        assert "note: front-matter keys ignored (not refvi's): layout" in out
    else:
        assert "no settings in the front matter: checked on linear_gaussian" in out


def test_a_sum_over_the_latent_infers_the_mixture(tmp_path, capsys):
    path = tmp_path / "mix.md"
    path.write_text("$$ p(x) = \\sum_k p(x|k) p(k) $$\n")
    assert cli.main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "checked on mixture (a sum over the latent's values: discrete z)" in out


def test_a_misspelt_refvi_key_is_an_error_with_a_suggestion(tmp_path, capsys):
    path = tmp_path / "typo.md"
    path.write_text("---\nsetings: mixture\n---\n\n" + GOOD + "\n")
    assert cli.main(["verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        "unknown front-matter entry 'setings: mixture'; did you mean 'settings'?" in err
    )


def test_refvi_settings_lists_settings_and_names(capsys):
    assert cli.main(["settings"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("gaussian ") and "\nmixture " in out
    assert cli.main(["settings", "linear_gaussian"]) == 0
    out = capsys.readouterr().out
    assert "  m_q " in out and "array (2, 2)" in out and "  log_q " in out
    assert cli.main(["settings", "mixtur"]) == 2
    assert "did you mean 'mixture'?" in capsys.readouterr().err


def test_an_unknown_setting_gets_a_suggestion(tmp_path, capsys):
    path = tmp_path / "typo.md"
    path.write_text("---\nsettings: linear_gausian\n---\n\n" + GOOD + "\n")
    assert cli.main(["verify", str(path)]) == 2
    assert "did you mean 'linear_gaussian'?" in capsys.readouterr().err


@pytest.mark.parametrize("options", ["d=1", "k=1, d=1"])
def test_one_dimensional_linear_gaussian(tmp_path, capsys, options):
    path = tmp_path / "d1.md"
    path.write_text(f"---\nsettings: linear_gaussian({options})\n---\n\n{GOOD}\n")
    assert cli.main(["verify", str(path)]) == 0
    assert "1 lines: 1 hold, 0 fail, 0 undetermined, 0 unsupported, 0 unchecked" in (
        capsys.readouterr().out
    )


KW = (
    r"$$ -D_{KL}(q(z|x) \| p(z)) = \frac{1}{2} \sum_{j=1}^{J} "
    r"\left(1 + \log \sigma_j^2 - \mu_j^2 - \sigma_j^2\right) $$"
)


@pytest.mark.parametrize("pinned", ["true", "false"])
def test_gaussian_parameters_and_pinned_settings(tmp_path, capsys, pinned):
    """The Kingma-Welling KL, with mu_j and sigma_j of a diagonal q, holds on
    the linear-Gaussian model (prior N(0, I)) and fails on the mixture prior
    that is added unless the front matter pins the declared settings."""
    path = tmp_path / "kw.md"
    front = f"---\nsettings: linear_gaussian(q=diag)\npinned: {pinned}\n---\n\n"
    path.write_text(front + KW + "\n")
    status = cli.main(["verify", str(path)])
    out = capsys.readouterr().out
    if pinned == "true":
        assert status == 0 and "1 lines: 1 hold" in out
    else:
        assert status == 1 and "fails on mixture_prior (3/3 instances)" in out


def test_sigma_of_a_full_covariance_q_is_unsupported(tmp_path, capsys):
    path = tmp_path / "kw.md"
    path.write_text("---\nsettings: linear_gaussian\npinned: true\n---\n\n" + KW + "\n")
    assert cli.main(["verify", str(path)]) == 3  # strict: not shown to hold
    assert "declare a diagonal q" in capsys.readouterr().out


MC_LINE = (
    r"$$ \mathcal{L} \approx \frac{1}{L} \sum_{l=1}^{L} \left[ \log p(x, z^{(l)})"
    r" - \log q(z^{(l)}|x) \right] $$"
)


@pytest.mark.parametrize(("sigmas", "status"), [("5", 0), ("0.01", 1)])
def test_the_files_sigmas_reach_the_latex_judge(tmp_path, capsys, sigmas, status):
    """A true Monte Carlo line (|z| about 1 on these instances) holds at the
    default 5 standard errors (a family-wise false-failure rate of one
    two-sided 5-sigma test, 5.7e-7 per instance) and fails when the file asks
    for 0.01: the front matter's ``sigmas`` is the LaTeX judge's."""
    path = tmp_path / "mc.md"
    path.write_text(
        f"---\nsettings: linear_gaussian\nsigmas: {sigmas}\n---\n{MC_LINE}\n"
    )
    assert cli.main(["verify", str(path)]) == status
