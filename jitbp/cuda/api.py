"""The single import point for Numba's CUDA API.

Prefers ``numba_cuda_mlir`` (the successor of ``numba-cuda``), falls back to
``numba.cuda`` (the ``numba-cuda`` package), and always uses ``numba.cuda`` under
the simulator (``NUMBA_ENABLE_CUDASIM=1``), which ``numba_cuda_mlir`` lacks.
"""
import importlib.util

from numba.core import config

INSTALL_HINT = 'install the CUDA extra (pip install "jitbp[cuda]")'


class CudaUnavailableError(RuntimeError):
    """Neither a CUDA GPU nor the CUDA simulator can run jitbp's device kernels."""


def _import_cuda():
    if not config.ENABLE_CUDASIM:
        try:
            from numba_cuda_mlir import cuda as mlir_cuda
            return mlir_cuda
        except ImportError:
            pass
        if importlib.util.find_spec("numba_cuda") is None:  # numba's own, deprecated numba.cuda is not enough
            raise CudaUnavailableError(f"device='cuda' needs numba-cuda, which is not installed: {INSTALL_HINT}")
    try:
        from numba import cuda as numba_cuda
    except ImportError as exc:
        raise CudaUnavailableError(f"device='cuda' needs numba-cuda: {INSTALL_HINT} ({exc})") from None
    return numba_cuda


cuda = _import_cuda()
SIMULATED = bool(config.ENABLE_CUDASIM)


def require_device():
    """Raise :class:`CudaUnavailableError` unless a GPU (or the simulator) is usable."""
    if not cuda.is_available():
        raise CudaUnavailableError(
            "device='cuda' found no usable CUDA GPU (cuda.is_available() is False); use device='cpu', "
            "or set NUMBA_ENABLE_CUDASIM=1 before Python starts to run on Numba's CUDA simulator")
