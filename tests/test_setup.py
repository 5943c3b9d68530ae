"""The package installs and runs as the README says; CI runs exactly that."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import refvi
from refvi.cli import main

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    """The shell commands in the README's Quick start code blocks."""
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", quick, flags=re.S)


def test_readme_has_exactly_the_two_quick_start_commands():
    assert readme_commands() == [
        "pip install -e . && refvi verify",
        'pip install -e ".[test]" && python -m pytest',
    ]


def test_ci_runs_the_readme_commands_verbatim_in_a_fresh_venv():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert "python3 -m venv" in ci and "mktemp -d" in ci
    # a fresh clone in a folder named refvi, where the README commands run
    assert 'git clone --quiet "$repo" "$work/refvi"' in ci
    assert 'cd "$work/refvi"' in ci
    for command in readme_commands():
        assert f"( {command} )" in ci, command
    assert "ruff check" in ci


def test_version_and_help(capsys):
    for flag in ("--version", "--help"):
        try:
            main([flag])
        except SystemExit as stop:
            assert stop.code == 0
    out = capsys.readouterr().out
    assert f"refvi {refvi.__version__}" in out
    assert "verify" in out


def test_python_dash_m_refvi_runs():
    done = subprocess.run(
        [sys.executable, "-m", "refvi", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"refvi {refvi.__version__}"


def test_import_refvi_leaves_scipy_integrate_for_the_quadrature_route():
    # scipy.integrate (with scipy.optimize and scipy.sparse behind it) took
    # about as long to import as the rest of refvi; only verify.integrate uses it
    probe = (
        "import sys, refvi; "
        "print(sorted(m for m in sys.modules if m.startswith('scipy.integrate')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
    value = refvi.integrate(lambda z: np.exp(-0.5 * z[:, 0] ** 2), 1).value
    assert abs(value - np.sqrt(2 * np.pi)) < 1e-10


def test_verify_runs_on_the_bundled_derivations():
    assert main(["verify"]) == 0


def test_top_level_api_and_every_public_module_declare_all():
    import importlib
    import pkgutil

    for name in refvi.__all__:
        assert hasattr(refvi, name), name
    modules = ["refvi.gaussian", "refvi.categorical", "refvi.mixture_kl"]
    for package in ("refvi.models", "refvi.verify", "refvi.inference"):
        pkg = importlib.import_module(package)
        modules += [f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]
    # the packages last: their __all__ names submodules, imported by now
    for module_name in modules + ["refvi.models", "refvi.verify", "refvi.inference"]:
        module = importlib.import_module(module_name)
        assert hasattr(module, "__all__"), module_name
        for name in module.__all__:
            assert hasattr(module, name), f"{module_name}.{name}"
