"""The layers of refvi import only downwards (DESIGN: data flows one way).

``verify`` (the numerical toolkit) imports nothing from refvi but
``_validate``; ``gaussian`` and ``categorical`` nothing above them; the models
not ``inference``, ``checker`` or the CLI; the checker not the CLI. Outside
refvi, only numpy, scipy and the standard library. The check is an AST walk
over every module (imports inside functions included), and is itself shown
to fail on a synthetic tree with forbidden imports.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Each part of refvi (its first path component under refvi/) and the rank
#: of its layer; a module may import its own part and parts of lower rank.
RANKS = {
    "_validate": 0,
    "_batch": 0,
    "verify": 1,
    "gaussian": 2,
    "categorical": 2,
    "models": 3,
    "mixture_kl": 3,
    "inference": 4,
    "__init__": 4.5,  # the package's public names, gathered from below
    "checker": 5,
    "figures": 5,
    "crosscheck": 5,
    "testing": 5.5,  # pytest helpers over crosscheck
    "cli": 6,
    "__main__": 7,
}
#: Parts of the same rank that may import each other (one layer, two files).
SAME_LAYER = {frozenset({"models", "mixture_kl"})}
THIRD_PARTY = {"numpy", "scipy"}
#: Optional extras a part may import (inside a function, so refvi runs without
#: them): matplotlib, the plot extra, for the figures.
OPTIONAL = {"figures": {"matplotlib"}}


def _part(module):
    """``refvi.models.mixture`` -> ``models``; ``refvi`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(package_root, path):
    rel = path.relative_to(package_root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts), path.name == "__init__.py"


def _imports(path, module, is_package):
    """(line, imported module) for every import in the file at ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # `from refvi import gaussian` imports the module refvi.gaussian
                yield node.lineno, f"{base}.{alias.name}" if base == "refvi" else base


def layer_violations(package_root):
    """Every import in the package at ``package_root`` that goes up a layer,
    sideways, or outside numpy/scipy/the standard library."""
    out = []
    for path in sorted(package_root.rglob("*.py")):
        module, is_package = _module_name(package_root, path)
        source = _part(module)
        where = f"{path.relative_to(package_root.parent)}"
        if source not in RANKS:
            out.append(f"{where}: part {source!r} has no layer in RANKS")
            continue
        for line, target in _imports(path, module, is_package):
            top = target.split(".")[0]
            if top != "refvi":
                optional = OPTIONAL.get(source, set())
                if not (
                    top in THIRD_PARTY | optional or top in sys.stdlib_module_names
                ):
                    out.append(f"{where}:{line}: imports {target} (not numpy/scipy)")
                continue
            part = _part(target)
            exists = (package_root / part).is_dir() or (
                package_root / f"{part}.py"
            ).exists()
            if not exists:  # `from refvi import __version__`: the package itself
                part = "__init__"
            allowed = (
                part == source
                or RANKS.get(part, 99) < RANKS[source]
                or frozenset({part, source}) in SAME_LAYER
            )
            if source == "verify" and part not in ("verify", "_validate"):
                allowed = False
            if not allowed:
                out.append(f"{where}:{line}: {source} imports {target}")
    return out


def test_refvi_imports_only_downwards():
    assert layer_violations(ROOT / "refvi") == []


def test_the_layer_check_catches_forbidden_imports(tmp_path):
    files = {
        "__init__.py": "",
        "_validate.py": "import numpy\n",
        "verify/__init__.py": "",
        "verify/quadrature.py": "from refvi._validate import x\n"
        "from refvi.gaussian import log_prob\n",
        "verify/montecarlo.py": "from ..models import mixture\n",
        "gaussian.py": "from refvi import _validate, verify\n"
        "def f():\n    from refvi.models import mixture\n",
        "categorical.py": "import torch\n",
        "models/__init__.py": "",
        "models/mixture.py": "from refvi import gaussian\n"
        "from refvi.checker import read\n",
        "models/mixture_prior.py": "from refvi.models import mixture\n"
        "from refvi.verify import quadrature\n",
        "mixture_kl.py": "from refvi.models import mixture\n",
        "checker/__init__.py": "",
        "checker/derivation.py": "from refvi.models import mixture\n"
        "from . import read\nfrom refvi.cli import main\n",
        "cli.py": "from refvi.checker import derivation\n",
        "extra.py": "",
    }
    for name, text in files.items():
        path = tmp_path / "refvi" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert layer_violations(tmp_path / "refvi") == [
        "refvi/categorical.py:1: imports torch (not numpy/scipy)",
        "refvi/checker/derivation.py:3: checker imports refvi.cli",
        "refvi/extra.py: part 'extra' has no layer in RANKS",
        "refvi/gaussian.py:3: gaussian imports refvi.models",
        "refvi/models/mixture.py:2: models imports refvi.checker",
        "refvi/verify/montecarlo.py:1: verify imports refvi.models",
        "refvi/verify/quadrature.py:2: verify imports refvi.gaussian",
    ]
