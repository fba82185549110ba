"""jitbp-conv: 1-D convolution, pooling and flatten layers, registered through the ``jitbp`` entry point."""
from jitbp.hookspecs import hookimpl

from .conv import Conv1d
from .flatten import Flatten
from .pool import AvgPool1d, MaxPool1d

__version__ = "0.1.0"
LAYERS = (Conv1d, MaxPool1d, AvgPool1d, Flatten)


@hookimpl
def register_layers(register):
    for cls in LAYERS:
        register(cls)
