"""``refvi figures``: every figure a PNG that decodes; a clear message without
matplotlib or for an unknown name."""

import sys

import numpy as np
import pytest

from refvi.cli import main
from refvi.figures import FIGURES


def test_every_figure_is_a_png_that_decodes(tmp_path, capsys):
    plt = pytest.importorskip("matplotlib.pyplot")
    assert main(["figures", "--out", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(written) == sorted(str(tmp_path / f"{n}.png") for n in FIGURES)
    for path in written:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        image = plt.imread(path)
        assert image.ndim == 3 and min(image.shape[:2]) > 200
        assert np.ptp(image) > 0.5  # not blank


def test_one_named_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["figures", "--out", str(tmp_path), "mixture_kl"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["mixture_kl.png"]


def test_unknown_figure_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["figures", "--out", str(tmp_path), "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown figure 'nope'" in err and "em_trace" in err
    assert not any(tmp_path.iterdir())


def test_without_matplotlib_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    assert main(["figures", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'refvi[plot]'" in err and err.count("\n") == 1


def test_list_names_every_figure(capsys):
    assert main(["figures", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in FIGURES)
