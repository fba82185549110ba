"""The one place that knows how each kernel tier is called (see docs/plugins.md).

A layer's *form* is its tier, with the fused tier split by ``uses_context``:
contract 1 (workspaces last) or contract 2 (a :class:`~jitbp.context.Context` last).
Each form's kernel arguments are listed by name once, in :data:`FORWARD_ARGS` and
:data:`BACKWARD_ARGS`; the interpreted engine and the conformance kit call kernels
from values of those names (:func:`forward`, :func:`backward`), the captured epoch
writes the same list as source text (:func:`forward_source`, :func:`backward_source`).
"""
import math

import numpy as np

from .errors import PluginError
from .layer import FREE, FUSED, GRADIENT, TIERS

#: The fused tier of contract 1: ``ws`` last, no context.
CONTRACT1 = "contract1"

FORWARD_ARGS = {
    CONTRACT1: ("xs", "params", "y", "ws"),
    FUSED: ("xs", "params", "y", "ctx"),
    GRADIENT: ("xs", "params", "y", "ctx"),
    FREE: ("xs", "y", "ctx"),
}
BACKWARD_ARGS = {
    CONTRACT1: ("xs", "y", "dy", "dxs", "need_dx", "params", "rule", "hyper", "states", "ws"),
    FUSED: ("xs", "y", "dy", "dxs", "need_dx", "params", "rule", "hyper", "states", "ctx"),
    GRADIENT: ("xs", "y", "dy", "dxs", "need_dx", "params", "grads", "ctx"),
    FREE: ("xs", "y", "dy", "dxs", "ctx"),
}


def form(layer):
    """The calling form of ``layer``'s kernels: ``CONTRACT1``, ``FUSED``, ``GRADIENT`` or ``FREE``."""
    tier = layer.tier
    if tier not in TIERS:
        raise PluginError(f"layer {layer.kind!r}: tier must be one of {', '.join(TIERS)}, got {tier!r}")
    if tier == FREE and layer.params:
        raise PluginError(f"layer {layer.kind!r}: a free-tier layer has no parameters, got "
                          f"{', '.join(layer.params)}")
    if tier == FUSED and not layer.uses_context:
        return CONTRACT1
    return tier


def skips_backward(layer_form, need_dx):
    """True when the backward of a call need not run: a free layer with no input delta wanted."""
    return not need_dx and layer_form == FREE


def forward(layer_form, kernel, **values):
    """Call the forward ``kernel`` of a ``layer_form`` layer with the named ``values`` it takes."""
    kernel(*[values[name] for name in FORWARD_ARGS[layer_form]])


def backward(layer_form, kernel, **values):
    """Call the backward ``kernel`` of a ``layer_form`` layer with the named ``values`` it takes."""
    kernel(*[values[name] for name in BACKWARD_ARGS[layer_form]])


def forward_source(layer_form, kernel, **sources):
    """The source text of a forward call of ``kernel`` from the named argument ``sources``."""
    return f"{kernel}({', '.join(sources[name] for name in FORWARD_ARGS[layer_form])})"


def backward_source(layer_form, kernel, **sources):
    """The source text of a backward call of ``kernel`` from the named argument ``sources``."""
    return f"{kernel}({', '.join(sources[name] for name in BACKWARD_ARGS[layer_form])})"


def pack_settings(layer, name):
    """``layer.settings()`` as the float64 array kernels read as ``ctx.settings``; a clear
    error naming the layer ``name`` for anything but finite ints and floats."""
    settings = layer.settings()
    if not isinstance(settings, dict):
        raise PluginError(f"layer {name} ({layer.kind}): settings() must return a dict, got "
                          f"{type(settings).__name__}")
    values = []
    for key, value in settings.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"layer {name} ({layer.kind}): setting {key!r} must be an int or a float, "
                            f"got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"layer {name} ({layer.kind}): setting {key!r} must be finite, got {value!r}")
        if isinstance(value, (int, np.integer)) and abs(int(value)) > 2**53:
            raise ValueError(f"layer {name} ({layer.kind}): int setting {key!r} is too large to pass exactly "
                             f"(|value| > 2**53), got {value!r}")
        values.append(float(value))
    return np.array(values, dtype=np.float64)
