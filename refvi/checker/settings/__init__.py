"""Random instances of each model family a derivation can be claimed for.

``SETTINGS[name](seed, **options)`` returns an ``Instance``
(``refvi.checker.namespace``); one module per setting, shared helpers in
``_common``.
"""

from refvi.checker.settings.aggregated import aggregated_setting
from refvi.checker.settings.amortized import amortized_setting
from refvi.checker.settings.categorical import categorical_setting
from refvi.checker.settings.em import em_linear_gaussian_setting, em_mixture_setting
from refvi.checker.settings.gaussian import gaussian_setting
from refvi.checker.settings.linear_gaussian import linear_gaussian_setting
from refvi.checker.settings.mixture import mixture_setting
from refvi.checker.settings.mixture_prior import mixture_prior_setting

SETTINGS = {
    "gaussian": gaussian_setting,
    "categorical": categorical_setting,
    "linear_gaussian": linear_gaussian_setting,
    "mixture": mixture_setting,
    "mixture_prior": mixture_prior_setting,
    "em_linear_gaussian": em_linear_gaussian_setting,
    "em_mixture": em_mixture_setting,
    "aggregated": aggregated_setting,
    "amortized": amortized_setting,
}

__all__ = ["SETTINGS"]
