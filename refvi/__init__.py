"""refvi: variational inference by closed form, confirmed by another route.

Every quantity refvi computes (a log-likelihood, an ELBO, a KL divergence, a
gradient, an EM update) has a closed form with a handwritten gradient, and a
test that computes the same number by an independent route (quadrature,
finite differences, Monte Carlo with standard errors, or another library).

The names below are the public API:

- distributions: ``Gaussian`` (batched, full or diagonal), ``standard_normal``,
  and the modules ``gaussian``, ``categorical``, ``mixture_kl``;
- models and their EM: ``LinearGaussian`` (factor analysis, pPCA),
  ``GaussianMixture``, ``MixturePrior``, and the modules ``linear_gaussian``,
  ``linear_gaussian_em``, ``mixture``, ``mixture_em``, ``mixture_prior``;
- the numerical toolkit (``refvi.verify``): gradient checks, quadrature and
  Monte Carlo estimates with their errors.
"""

__version__ = "0.1.0"

from refvi import categorical, gaussian, mixture_kl, verify
from refvi.gaussian import Gaussian, standard_normal
from refvi.models import (
    linear_gaussian,
    linear_gaussian_em,
    mixture,
    mixture_em,
    mixture_prior,
)
from refvi.models.linear_gaussian import LinearGaussian
from refvi.models.mixture import GaussianMixture
from refvi.models.mixture_prior import MixturePrior
from refvi.verify.gradcheck import (
    assert_gradcheck,
    gradcheck,
    numerical_gradient,
    taylor_test,
)
from refvi.verify.montecarlo import assert_z_test, mc_mean, z_test
from refvi.verify.quadrature import (
    expect_discrete,
    expect_gaussian,
    integrate,
    log_expect_gaussian,
)

__all__ = [
    "__version__",
    "Gaussian",
    "GaussianMixture",
    "LinearGaussian",
    "MixturePrior",
    "assert_gradcheck",
    "assert_z_test",
    "categorical",
    "expect_discrete",
    "expect_gaussian",
    "gaussian",
    "gradcheck",
    "integrate",
    "linear_gaussian",
    "linear_gaussian_em",
    "log_expect_gaussian",
    "mc_mean",
    "mixture",
    "mixture_em",
    "mixture_kl",
    "mixture_prior",
    "numerical_gradient",
    "standard_normal",
    "taylor_test",
    "verify",
    "z_test",
]
