"""What a contract-2 kernel knows about its call: mode, settings, state, workspaces, randomness."""
from typing import NamedTuple

import numpy as np


class Context(NamedTuple):
    """The last argument of every contract-2 kernel (see docs/plugins.md).

    A Numba named tuple: kernels read ``ctx.training``, ``ctx.settings[k]``, ...
    """

    #: True in ``learn`` and ``gradients``, False in ``predict``.
    training: bool
    #: float64 array of ``Layer.settings()`` values, in their order (ints are exact).
    settings: np.ndarray
    #: The layer's state buffers (``Layer.state`` order): non-trainable arrays its
    #: kernels may update in training mode; saved in model files, never optimized.
    state: tuple
    #: Workspace arrays shaped by ``Layer.workspace_shapes``.
    ws: tuple
    #: This call's random key: the run's seed mixed with the call's index in the graph.
    seed: np.uint64
    #: The optimizer step (1-based) of the batch in training, 0 in prediction.
    step: np.int64
