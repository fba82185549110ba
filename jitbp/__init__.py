"""jitbp: neural networks trained by back-propagation on Numba kernels, layers as plugins."""
__version__ = "0.1.0"

from . import kernel_stamp

kernel_stamp.refresh("jitbp")  # before any kernel loads from Numba's cache
from .context import Context
from .errors import (DivergenceError, ModelFileError, PluginError, ShapeError, TrainingInterrupted,
                     UnknownNameError)
from .gradcheck import gradcheck, numerical_gradients
from .graph import Input
from .layer import Layer
from .losses import LOSSES
from .network import Network, Sequential
from .optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .plugins import available_layers, layer
from .serialization import load

__all__ = [
    "Adagrad", "Adam", "AdamW", "Context", "DivergenceError", "Input", "LOSSES", "Layer", "ModelFileError", "Network",
    "Optimizer", "PluginError", "RMSprop", "SGD", "Sequential", "ShapeError", "TrainingInterrupted",
    "UnknownNameError",
    "available_layers", "gradcheck", "layer", "load", "numerical_gradients",
]
