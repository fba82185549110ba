"""Scalar math written once, compiled for the CPU and, on demand, for CUDA.

``@scalar`` compiles a plain Python function of scalars as an inlined Numba CPU
function and keeps its source; :func:`on_cuda` compiles that same source as a CUDA
device function, with every other ``@scalar`` function it calls swapped for its CUDA
twin. Use the ``math`` module (both targets support it), not NumPy ufuncs.
"""
import dis
import types

from numba import njit

_CUDA_TWINS = {}


def scalar(func):
    """``func`` as an inlined CPU function that :func:`on_cuda` can recompile for the device."""
    dispatcher = njit(cache=True, inline="always", error_model="numpy")(func)
    dispatcher.scalar_source = func
    return dispatcher


def on_cuda(dispatcher):
    """The CUDA device function compiled from a ``@scalar`` function's source."""
    func = dispatcher.scalar_source
    twin = _CUDA_TWINS.get(func)
    if twin is None:
        from .cuda.api import cuda

        namespace = dict(func.__globals__)
        for name in _globals_read(func):
            if hasattr(namespace.get(name), "scalar_source"):
                namespace[name] = on_cuda(namespace[name])
        clone = types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__)
        twin = _CUDA_TWINS[func] = cuda.jit(device=True)(clone)
    return twin


def _globals_read(func):
    """The global names ``func`` loads (not attribute names such as ``math.tanh``'s ``tanh``)."""
    return {ins.argval for ins in dis.get_instructions(func) if ins.opname == "LOAD_GLOBAL"}
