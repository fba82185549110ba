"""Find each layer's CUDA launchers from its ``cuda_kernels`` dotted name."""
import pkgutil

from ..errors import PluginError


class NoCudaKernelsError(ValueError):
    """A layer in a ``device="cuda"`` network supplies no CUDA kernels."""


def device_kernels(net):
    """``{id(layer): (forward, backward)}`` for every layer of ``net``, or a clear error.

    ``cuda_kernels`` names a module, or an object inside one (``pkg.module.attr``),
    that defines ``forward`` and ``backward``.
    """
    missing = [net.layer_names[id(layer)] + f" ({layer.kind})"
               for layer in net.layers if not layer.cuda_kernels]
    if missing:
        raise NoCudaKernelsError(
            f"layer(s) {', '.join(missing)} have no CUDA kernels (their class sets no cuda_kernels); "
            "build this network with device='cpu'")
    found = {}
    for layer in net.layers:
        name = layer.cuda_kernels
        try:
            target = pkgutil.resolve_name(name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise PluginError(f"layer {net.layer_names[id(layer)]} ({layer.kind}): cannot import its "
                              f"CUDA kernels {name!r}: {exc}") from exc
        forward, backward = getattr(target, "forward", None), getattr(target, "backward", None)
        if not (callable(forward) and callable(backward)):
            raise PluginError(f"layer {net.layer_names[id(layer)]} ({layer.kind}): {name!r} must define "
                              "callable forward and backward")
        found[id(layer)] = (forward, backward)
    return found
