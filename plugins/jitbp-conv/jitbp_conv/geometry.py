"""Shape checks and output lengths shared by the convolution and pooling layers.

The integer geometry itself (kernel size, stride, padding) reaches the kernels as
their layer's ``settings()``, read as ``ctx.settings``.
"""
import numbers

from jitbp.errors import ShapeError


def check_non_negative(name, value):
    """``value`` as an int >= 0, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return int(value)


def sequence_shape(kind, input_shapes, channels=None):
    """``(channels, length)`` of the single input, or a ShapeError naming ``kind``."""
    shape = tuple(input_shapes[0])
    if len(shape) != 2:
        raise ShapeError(f"{kind} takes per-sample shape (channels, length), got {shape}")
    if channels is not None and shape[0] != channels:
        raise ShapeError(f"{kind} expects {channels} input channel(s), got {shape[0]} (input shape {shape})")
    return shape


def output_length(kind, length, kernel_size, stride, padding=0):
    """Number of window positions, or a ShapeError if the window does not fit."""
    span = length + 2 * padding
    if span < kernel_size:
        raise ShapeError(f"{kind}: kernel_size {kernel_size} is larger than the (padded) input length {span}")
    return (span - kernel_size) // stride + 1
