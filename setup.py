"""Packaging for refvi: numpy and scipy at run time, nothing else."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "refvi" / "__init__.py").read_text()
).group(1)

setup(
    name="refvi",
    version=VERSION,
    description=(
        "Reference implementation of variational inference with handwritten "
        "gradients, every number confirmed by an independent route"
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=[*find_packages(include=["refvi", "refvi.*"]), "refvi.derivations"],
    # The top-level derivations/ folder ships inside the package so that
    # `refvi verify` finds the bundled derivations after a plain `pip install .`.
    package_dir={"refvi.derivations": "derivations"},
    package_data={
        "refvi.derivations": ["*.md"],
        # KaTeX (MIT), inlined into refvi verify --html pages
        "refvi.checker": [
            "html_assets/*",
            "html_assets/fonts/*",
            "report_schema.json",
        ],
        "refvi.crosscheck": ["cases_schema.json"],
    },
    install_requires=["numpy>=1.23", "scipy>=1.9"],
    extras_require={
        "test": ["pytest>=7", "scikit-learn>=1.2", "mpmath>=1.2", "matplotlib>=3.5"],
        "plot": ["matplotlib>=3.5"],
        "dev": ["ruff>=0.6"],
    },
    entry_points={"console_scripts": ["refvi = refvi.cli:main"]},
)
