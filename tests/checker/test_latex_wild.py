"""The wild corpus: derivations written the way blog posts, course notes,
notebooks and Q&A answers write them, every claim line labelled in
``latex_corpus/wild/truth.json`` (``holds``: true, ``fails``: a planted error,
``definition``: not a claim).

Coverage is the share of claim lines that get a verdict (holds or fails) from
their LaTeX alone; recall the share of wrong lines flagged; a false alarm is a
true line flagged. The thresholds below are what the checker reaches today,
not the goal (coverage 90%, recall 100%, no false alarm): raise them as the
vocabulary grows, never lower them.
"""

import json
from pathlib import Path

from refvi.checker.latex import check_latex_file

WILD = Path(__file__).parent / "latex_corpus" / "wild"
TRUTH = json.loads((WILD / "truth.json").read_text())

MIN_COVERAGE = 0.99
MIN_RECALL = 1.0
MAX_FALSE_ALARMS = 0


def verdicts(path):
    """File line -> 'holds', 'fails' or None (no verdict: unsupported,
    malformed, ...), over every relation stated on that line."""
    out = {}
    for r in check_latex_file(path, seeds=2).lines:
        if r.status not in ("holds", "fails"):
            out.setdefault(r.line, None)
            if r.status == "unsupported":
                out[r.line] = None
            continue
        prev = out.get(r.line, "holds")
        if prev is None and r.line in out:
            continue
        out[r.line] = "fails" if "fails" in (prev, r.status) else "holds"
    return out


def score():
    """(coverage, recall, false alarms, table) over the whole corpus."""
    claims = checked = wrong = flagged = 0
    alarms, missed, table = [], [], []
    for name, labels in sorted(TRUTH.items()):
        got = verdicts(WILD / name)
        for line, want in sorted(labels.items(), key=lambda kv: int(kv[0])):
            if want == "definition":
                continue
            verdict = got.get(int(line))
            claims += 1
            checked += verdict is not None
            if want == "fails":
                wrong += 1
                flagged += verdict == "fails"
                if verdict != "fails":
                    missed.append(f"{name}:{line}")
            elif verdict == "fails":
                alarms.append(f"{name}:{line}")
            table.append((name, int(line), want, verdict))
    coverage = checked / claims
    recall = flagged / wrong
    text = (
        f"wild corpus: {len(TRUTH)} files, {claims} claim lines, {wrong} wrong; "
        f"coverage {checked}/{claims} = {coverage:.1%}, recall {flagged}/{wrong} = "
        f"{recall:.1%}, false alarms {len(alarms)}"
    )
    return coverage, recall, alarms, missed, table, text


def test_wild_corpus_coverage_recall_and_false_alarms(capsys):
    coverage, recall, alarms, missed, _, text = score()
    with capsys.disabled():
        print("\n" + text)
        if missed:
            print("  wrong lines not flagged: " + ", ".join(missed))
    assert not alarms, f"false alarms: {alarms}"
    assert len(alarms) <= MAX_FALSE_ALARMS
    assert coverage >= MIN_COVERAGE, text
    assert recall >= MIN_RECALL, text


def test_the_corpus_is_large_enough_and_has_planted_errors():
    assert len(TRUTH) >= 25
    with_errors = [n for n, t in TRUTH.items() if "fails" in t.values()]
    assert len(with_errors) >= 15


if __name__ == "__main__":  # .ci/run prints the numbers
    print(score()[-1])
