"""Time the LaTeX checker (refvi.checker.latex) on the seed derivation and the
hand-made corpus, and print the corpus's precision, recall and separation.

    python benchmarks/latex_check.py

The seed derivation must check in under 10 s on 2 cores; the
instances are built once per process, so the first file pays for them.
"""

import re
import time
from pathlib import Path

from refvi.checker.latex import check_latex_file
from refvi.checker.latex.check import corpus_summary
from refvi.checker.latex.models import make_model

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "latex_corpus"
SEED = CORPUS / "seed_variational_encoding.md"


def expected(path):
    found = re.findall(r"<!-- expect: (.*?) -->", path.read_text())
    return [s.strip() for item in found for s in item.split(",")]


def main():
    start = time.perf_counter()
    result = check_latex_file(SEED)
    seed_time = time.perf_counter() - start
    statuses = ", ".join(f"{r.line}:{r.status}" for r in result.lines)
    print(f"seed derivation (cold, instances included): {seed_time:.2f} s")
    print(f"  verdicts: {statuses}")
    make_model.cache_clear()
    pairs, start = [], time.perf_counter()
    files = sorted(p for p in CORPUS.glob("*.md") if p != SEED)
    for path in files:
        res = check_latex_file(path)
        pairs += list(zip(expected(path), res.lines, strict=True))
    corpus_time = time.perf_counter() - start
    print(f"corpus: {len(files)} files in {corpus_time:.2f} s")
    print("  " + corpus_summary(pairs).text)


if __name__ == "__main__":
    main()
