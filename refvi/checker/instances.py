"""The random instances of the settings, made once per run for both front ends.

``make_instance(name, options, seed)`` is the one cache of instances: the
check blocks (``derivation``) and the LaTeX front end (``latex.models``) see
the same deep-frozen instance of a setting, so a derivation checked both ways
is checked on the same numbers, and an instance is built once.
"""

from functools import lru_cache

import numpy as np

from refvi.checker import settings as settings_module

#: Random instances per setting unless the file or ``--seeds`` says otherwise.
DEFAULT_SEEDS = 3


def _frozen(value):
    """``value`` with every array replaced by a read-only copy whose memory is
    an immutable bytes object (so ``setflags(write=True)`` cannot undo it);
    lists, tuples and dicts are frozen item by item."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        copy = np.frombuffer(value.tobytes(), dtype=value.dtype)
        return copy.reshape(value.shape)
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


@lru_cache(maxsize=256)
def make_instance(name, options, seed):
    """The instance of setting ``name`` for ``seed``, cached and deep-frozen:
    its arrays cannot be made writable, so a check (or an earlier file in the
    same run) cannot change what later checks see."""
    instance = settings_module.SETTINGS[name](seed, **dict(options))
    instance.names = _frozen(instance.names)
    return instance
