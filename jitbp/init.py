"""Weight initialisation schemes for ``init=`` on dense and conv layers.

Each scheme follows the published formula (and torch.nn.init's): with ``fan_in``
inputs and ``fan_out`` outputs per weight (times the kernel size for convolutions),

- ``uniform`` (the default, PyTorch's nn.Linear / nn.Conv default): U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
  bias drawn the same way;
- ``he_uniform``: U(-sqrt(6 / fan_in), +sqrt(6 / fan_in))  (He et al. 2015, gain sqrt(2));
- ``he_normal``: N(0, 2 / fan_in);
- ``glorot_uniform``: U(-sqrt(6 / (fan_in + fan_out)), +...)  (Glorot & Bengio 2010);
- ``glorot_normal``: N(0, 2 / (fan_in + fan_out)).

The He and Glorot schemes start biases at zero (as Keras does). Draws come from
``np.random.default_rng(seed)``, so a fixed ``seed`` gives the same weights.
"""
import math

import numpy as np

from .errors import UnknownNameError

INITS = ("uniform", "he_uniform", "he_normal", "glorot_uniform", "glorot_normal")


def check_init(init):
    """``init`` if it names a scheme, else a clear error."""
    if init not in INITS:
        raise UnknownNameError(f"unknown init {init!r}; known: {', '.join(INITS)}")
    return init


def scale(init, fan_in, fan_out):
    """The uniform bound (``*_uniform``) or the standard deviation (``*_normal``)."""
    if init == "uniform":
        return 1.0 / math.sqrt(fan_in)
    if init.startswith("he_"):
        var = 2.0 / fan_in
    else:
        var = 2.0 / (fan_in + fan_out)
    return math.sqrt(3.0 * var) if init.endswith("_uniform") else math.sqrt(var)


def draw(rng, init, shape, fan_in, fan_out, dtype=np.float64):
    """Weights of ``shape`` for a non-default ``init`` (``uniform`` stays with each layer,
    whose exact draws existing seeds reproduce)."""
    s = scale(init, fan_in, fan_out)
    if init.endswith("_normal"):
        return (rng.standard_normal(shape) * s).astype(dtype)
    return rng.uniform(-s, s, shape).astype(dtype)
