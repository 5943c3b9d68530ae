"""The ``refvi verify`` application: reads derivations, checks every line, reports.

Sits above the models; the numerical toolkit it uses is ``refvi.verify``.
"""
