"""The docs hold together: links resolve, code and derivations cite each other,
and nothing points outside the repository.

- Every equation label ``\\tag{P.n}`` in ``derivations/*.md`` is cited by at
  least one function, class or module docstring in ``refvi/`` or ``tests/``
  (no orphan equations), and every label a docstring cites exists, in the
  file the docstring names when it names one (no dangling citations).
- Every relative link and every backquoted path in README.md, CONTRIBUTING.md,
  docs/, derivations/ and benchmarks/ resolves inside the repository.
- No tracked text file names a path outside the repository or an issue number.
"""

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DERIVATIONS = ROOT / "derivations"

#: A cited label, or a range of labels of one prefix: (LG.12)-(LG.13).
CITATION = re.compile(r"\(([A-Z]+)\.(\d+)\)(?:\s*(?:-|–|--)\s*\(\1\.(\d+)\))?")
#: "derivations/name.md" followed (on the same line) by its labels.
NAMED = re.compile(r"derivations/(\w+\.md)(#[\w.]+)?([^\n]*)")
TAG = re.compile(r"\\tag\{([A-Z]+\.\d+)\}")


def defined_labels():
    """{label: derivation file name} from every ``\\tag{...}``."""
    labels = {}
    for path in sorted(DERIVATIONS.glob("*.md")):
        for label in TAG.findall(path.read_text()):
            assert label not in labels, f"{label} defined twice"
            labels[label] = path.name
    return labels


def docstrings():
    """(where, docstring) for every module, class and function under refvi/
    and tests/."""
    for folder in ("refvi", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(
                    node,
                    (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef),
                ):
                    doc = ast.get_docstring(node)
                    if doc:
                        name = getattr(node, "name", "<module>")
                        yield f"{path.relative_to(ROOT)}:{name}", doc


def cited_labels(text):
    """Every label cited in ``text``, ranges expanded."""
    for m in CITATION.finditer(text):
        first = int(m.group(2))
        last = int(m.group(3) or first)
        for n in range(first, last + 1):
            yield f"{m.group(1)}.{n}"


def test_citation_pattern_expands_ranges():
    text = "Implements (LG.12)-(LG.14) and (G.1), (MK.3)–(MK.4)."
    assert list(cited_labels(text)) == [
        "LG.12",
        "LG.13",
        "LG.14",
        "G.1",
        "MK.3",
        "MK.4",
    ]


def test_every_cited_label_exists_in_the_file_named():
    labels = defined_labels()
    dangling = []
    for where, doc in docstrings():
        for label in cited_labels(doc):
            if label not in labels:
                dangling.append(f"{where}: ({label}) is no \\tag in derivations/")
        for m in NAMED.finditer(doc):
            name, anchor, rest = m.groups()
            if not (DERIVATIONS / name).is_file():
                dangling.append(f"{where}: derivations/{name} does not exist")
                continue
            named = list(cited_labels(rest.split("derivations/")[0]))
            if anchor:
                named.append(anchor[1:])
            for label in named:
                if labels.get(label) != name:
                    dangling.append(f"{where}: ({label}) is not in derivations/{name}")
    assert not dangling, "\n".join(dangling)


def test_every_labelled_equation_is_cited_by_a_docstring():
    cited = {label for _, doc in docstrings() for label in cited_labels(doc)}
    orphans = [
        f"derivations/{name} ({label})"
        for label, name in defined_labels().items()
        if label not in cited
    ]
    assert not orphans, "cited by no docstring:\n" + "\n".join(orphans)


def test_a_dangling_citation_and_an_orphan_are_caught():
    labels = defined_labels()
    assert "LG.999" not in labels
    assert set(cited_labels("see (LG.999)")) - set(labels) == {"LG.999"}
    # the pattern does not silently miss a real label
    assert "LG.4" in labels and set(cited_labels("(LG.4)")) <= set(labels)


# ---------------------------------------------------------------- links


def doc_files():
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    for folder in ("docs", "derivations", "benchmarks"):
        files.extend(sorted((ROOT / folder).rglob("*.md")))
    return [f for f in files if f.is_file()]


#: [text](target) and ![alt](target), target without spaces.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
#: `some/path.ext` in backquotes: a path with a folder and an extension.
CODE_PATH = re.compile(
    r"`((?:\.{1,2}/)?[\w.-]+(?:/[\w.-]+)+\.(?:md|py|json|png|yaml|toml|ini|txt))`"
)
#: <img src="..."> in HTML embedded in Markdown.
SRC = re.compile(r'\bsrc="([^"]+)"')
FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.S | re.M)


def broken_links(path, text=None):
    """(line, target, why) for each link or backquoted path of ``path`` that
    does not resolve to a file inside the repository."""
    text = path.read_text() if text is None else text
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    bad = []
    for number, line in enumerate(prose.splitlines(), 1):
        targets = [(t, "link") for t in LINK.findall(line)]
        targets += [(t, "path") for t in CODE_PATH.findall(line)]
        targets += [(t, "link") for t in SRC.findall(line)]
        for target, kind in targets:
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same page
            file_part = target.split("#", 1)[0]
            candidates = [(path.parent / file_part).resolve()]
            if kind == "path":  # backquoted paths are written from the root
                candidates.append((ROOT / file_part).resolve())
            inside = [c for c in candidates if c.is_relative_to(ROOT)]
            if not inside:
                bad.append((number, target, "outside the repository"))
            elif not any(c.exists() for c in inside):
                bad.append((number, target, "does not exist"))
    return bad


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(path):
    bad = broken_links(path)
    assert not bad, "\n".join(
        f"{path.relative_to(ROOT)}:{n}: {t}: {why}" for n, t, why in bad
    )


def test_link_checker_catches_a_broken_and_an_outside_link():
    page = ROOT / "docs" / "_probe.md"
    text = (
        "[ok](../README.md) [gone](nothing.md) `../../etc/passwd.txt` "
        "[out](../../x.md) [web](https://example.org) [here](#index) "
        '<img src="gone.png">\n'
    )
    whys = sorted(why for _, _, why in broken_links(page, text))
    assert whys == ["does not exist"] * 2 + ["outside the repository"] * 2


# ---------------------------------------------------------------- outside refs

OUTSIDE = [
    (re.compile(r"\.\./shared|/work/"), "a path outside the repository"),
    (re.compile(r"\bissues?\s*#?\d+", re.I), "an issue number"),
    (
        re.compile(r"`duplicates\b|^duplicates --", re.M),
        "a tool outside the repository",
    ),
]


def tracked_text_files():
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    if not listed:
        pytest.skip("not a git checkout")
    suffixes = {".md", ".py", ".toml", ".ini", ".yaml", ".yml", ".txt", ".cfg", ""}
    for name in listed:
        path = ROOT / name
        if path.suffix in suffixes and path.is_file() and path != Path(__file__):
            yield path


def test_no_file_names_a_path_outside_the_repository_or_an_issue():
    found = []
    for path in tracked_text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for pattern, what in OUTSIDE:
                if pattern.search(line):
                    found.append(
                        f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()}"
                    )
    assert not found, "\n".join(found)


# ---------------------------------------------------------------- pytest -m slow


def test_pytest_dash_m_slow_exits_0_when_no_slow_test_exists(tmp_path):
    """The README offers ``python -m pytest -m slow``: it must not exit 5
    (no tests collected) just because no slow test exists; another empty
    selection still exits 5."""
    import sys

    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: slow\n")
    (tmp_path / "test_fast.py").write_text("def test_fast():\n    pass\n")

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=tmp_path,
            capture_output=True,
            check=False,
        ).returncode

    assert run("-m", "slow") == 0
    assert run("-m", "not_a_marker") == 5


# ---------------------------------------------------------------- derivations index


def displayed_lines(text):
    """The number of ``$$`` displays outside fenced blocks (as refvi verify
    counts them: one per display, however many source lines it spans)."""
    prose = FENCE.sub("", text)
    count, inside = 0, False
    for line in prose.splitlines():
        s = line.strip()
        if not inside and s.startswith("$$"):
            count += 1
            inside = not (len(s) >= 4 and s.endswith("$$"))
        elif inside and s.endswith("$$"):
            inside = False
    return count


def test_displayed_lines_counts_one_per_display():
    text = "$$ a = b $$\n\n```check\nx\n```\n$$\nc\n= d\n$$\n```text\n$$ no $$\n```\n"
    assert displayed_lines(text) == 2


def test_derivations_index_lists_every_file_with_its_settings_and_lines():
    readme = (DERIVATIONS / "README.md").read_text()
    table = readme.split("<!-- index -->", 1)[1].split("<!-- /index -->", 1)[0]
    rows = {}
    for row in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
        name = re.match(r"\[([\w.]+)\]", cells[0]).group(1)
        rows[name] = cells
    files = sorted(p for p in DERIVATIONS.glob("*.md") if p.name != "README.md")
    assert sorted(rows) == sorted(p.name for p in files)
    for path in files:
        text = path.read_text()
        settings = re.search(r"^settings:\s*(.*)$", text, flags=re.M).group(1)
        _, listed, lines, proves = rows[path.name]
        assert listed == settings.strip(), f"{path.name}: settings are {settings}"
        assert int(lines) == displayed_lines(text), (
            f"{path.name} has {displayed_lines(text)} displayed lines, "
            f"the index says {lines}"
        )
        assert proves


def test_readme_quotes_the_verify_legend_of_the_help():
    from refvi.cli import VERIFY_LEGEND

    assert f"```text\n{VERIFY_LEGEND}```" in (ROOT / "README.md").read_text()


def test_readme_gallery_shows_every_figure():
    from refvi.figures import FIGURES

    readme = (ROOT / "README.md").read_text()
    gallery = readme.split("<!-- gallery -->", 1)[1].split("<!-- /gallery -->", 1)[0]
    shown = re.findall(r'src="docs/figures/(\w+)\.png"', gallery)
    assert sorted(shown) == sorted(FIGURES)
    assert "refvi figures --out docs/figures" in readme
