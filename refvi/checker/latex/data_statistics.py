"""Statistics of the data set a line is checked on: ``\\bar x``, ``\\hat\\Sigma``.

A derivation about a data set x_1, ..., x_n writes its mean
``\\bar x = \\frac1n \\sum_i x_i`` and its sample covariance
``\\hat\\Sigma = \\frac1n \\sum_i (x_i - \\bar x)(x_i - \\bar x)^\\top`` (the
maximum-likelihood normalisation 1/n, as EM and pPCA use it). In matrix
notation (``models.MATRIX_SYMBOLS``) the two symbols (``accents``: the
spellings ``\\bar{x}``, ``\\overline{x}``, ``\\hat{\\Sigma}``,
``\\widehat\\Sigma`` read the same) are these statistics of the instance's own
data, the x_i of every line of the file, computed by
``refvi.models.linear_gaussian_em.sufficient_stats``; and
``\\psi_{\\text{floor}}``, the noise floor of that module's M-step, its
default ``PSI_FLOOR_REL`` times the mean of the diagonal of ``\\hat\\Sigma``.
"""

import numpy as np

from refvi.checker.latex.matrix import Mat
from refvi.models import linear_gaussian_em as lg_em

#: The symbols (canonical spellings) of the data set's statistics.
DATA_STATISTICS = ("\\bar{x}", "\\hat{\\Sigma}", "\\psi_floor")


def data_statistic(name, x):
    """The statistic ``name`` (``DATA_STATISTICS``) of the data ``x`` (n, d)."""
    stats = lg_em.sufficient_stats(x)
    if name == "\\psi_floor":
        return float(lg_em.PSI_FLOOR_REL * np.mean(np.diag(stats.Sigma_hat)))
    return Mat.of(stats.xbar if name == "\\bar{x}" else stats.Sigma_hat)
