"""docs/tutorial.md holds line by line; each exercise's classic mistake is
rejected by refvi verify at exactly its wrong line."""

from pathlib import Path

import pytest

from refvi.checker.ci_report import verdict_of
from refvi.checker.derivation import verify_file

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXERCISES = sorted((DOCS / "exercises").glob("*.md"))


def test_every_line_of_the_tutorial_holds():
    result = verify_file(DOCS / "tutorial.md")
    verdicts = [verdict_of(line) for line in result.lines]
    assert len(verdicts) == 7 and set(verdicts) == {"holds"}


def test_the_tutorial_links_every_exercise():
    text = (DOCS / "tutorial.md").read_text()
    assert len(EXERCISES) == 4
    for path in EXERCISES:
        assert f"(exercises/{path.name})" in text


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_each_exercise_fails_at_exactly_its_wrong_line(path):
    result = verify_file(path)
    verdicts = [(line.line, verdict_of(line)) for line in result.lines]
    assert verdicts == [(6, "holds"), (13, "fails")]
