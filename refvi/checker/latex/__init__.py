"""Check a derivation from its LaTeX alone.

LaTeX display math -> tokens (``tokens``) -> typed intermediate form
(``parser``, ``ir``) -> numbers on random model instances (``evaluate``,
``models``) -> verdicts with hints (``check``, ``hints``). The vocabulary, the
front matter and the ambiguity rules are documented in derivations/README.md.
"""

from refvi.checker.latex.check import check_latex_file, check_latex_text, format_result
from refvi.checker.latex.tokens import MalformedLatex

__all__ = ["MalformedLatex", "check_latex_file", "check_latex_text", "format_result"]
