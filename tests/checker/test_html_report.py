"""refvi verify --html FILE: a self-contained page, each display marked by its
verdict; loaded in headless Chromium it runs without console errors, renders
the math, and its screenshot shows the failing line marked."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from refvi.cli import main

#: The source text refvi started from, with its two wrong steps (lines 27 by
#: one reading, 31 and 56 fail).
SEED = Path(__file__).parent / "latex_corpus" / "seed_variational_encoding.md"
FAIL_RGB = np.array([0xFD, 0xEC, 0xEA]) / 255  # background of a failing display


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "seed.html"
    status = main(["verify", "--html", str(path), str(SEED)])
    assert status == 1  # the source has failing lines
    return path


def test_page_marks_every_display_with_its_verdict(page):
    text = page.read_text()
    verdicts = re.findall(r'id="[\w-]*-L(\d+)" data-verdict="(\w+)"', text)
    marked = {int(line): verdict for line, verdict in verdicts}
    assert marked[27] == "fails"  # log takes the fraction; p(x) multiplies it
    assert marked[31] == "fails" and marked[56] == "fails"
    assert marked[25] == "holds"
    assert set(marked.values()) <= {
        "holds",
        "fails",
        "undetermined",
        "unchecked",
        "unsupported",
    }
    # the summary lists the failing lines with links to them
    summary = text.split('<div class="summary"', 1)[1].split("</div>", 1)[0]
    assert "3 fails" in summary and "seed_variational_encoding.md:31</a>" in summary


def test_page_is_self_contained(page):
    text = page.read_text()
    markup = re.sub(r"<script\b.*?</script>", "", text, flags=re.S)
    # no resource is fetched: no src= or href= to another file or host
    assert "<script" in text and not re.findall(r"<script[^>]*\bsrc=", text)
    assert not re.findall(r'(?:src|href)="(?!#)[^"]*"', markup)
    assert "<link" not in markup
    assert "url(fonts/" not in text and "url(data:font/woff2;base64," in text
    assert "katex" in text  # the renderer is inlined


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip(
        "headless Chromium not found (Debian package 'chromium'; .ci/run installs it)"
    )


def _run_chromium(args, tmp_path):
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False
    )


def test_page_loads_in_headless_chromium_without_errors(page, tmp_path):
    done = _run_chromium(["--dump-dom", page.as_uri()], tmp_path)
    dom = done.stdout
    assert '<html lang="en" data-errors="0"' in dom, dom[:300]
    assert 'data-rendered="true"' in dom  # KaTeX ran
    assert dom.count('class="katex-display"') >= 10  # each display rendered


def test_screenshot_shows_the_failing_line_marked(page, tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    shot = tmp_path / "seed.png"
    _run_chromium(
        ["--window-size=1100,1800", f"--screenshot={shot}", page.as_uri()], tmp_path
    )
    image = plt.imread(shot)[..., :3]
    # the failing display's tinted background covers a band of the page
    tinted = np.all(np.abs(image - FAIL_RGB) < 2 / 255, axis=-1)
    rows = np.flatnonzero(tinted.mean(axis=1) > 0.5)
    assert rows.size > 40, "no failing line marked in the screenshot"
