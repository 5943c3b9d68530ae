"""One cache of setting instances for both front ends (refvi.checker.instances)."""

import pytest

from refvi.checker.instances import make_instance
from refvi.checker.latex.models import make_model


def test_the_latex_front_end_sees_the_blocks_instance():
    """The LaTeX model of instance 0 is built on the very instance the check
    blocks evaluate on: the same frozen arrays, not a second draw."""
    block = make_instance("linear_gaussian", (), 0)
    model = make_model("linear_gaussian", 0)
    assert model.names is block.names


def test_instances_are_deep_frozen():
    W = make_instance("mixture_prior", (), 1).names["W"]
    with pytest.raises(ValueError):
        W[0, 0] = 1.0
    with pytest.raises(ValueError):
        W.setflags(write=True)
