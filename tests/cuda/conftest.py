"""The CUDA tests run under Numba's CUDA simulator or on a real GPU; elsewhere they skip.

The simulator must be chosen before numba is imported, so it takes its own run:
``NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/cuda``.
"""
import functools
import subprocess
import sys

import pytest
from numba.core import config

NO_TARGET = ("CUDA tests need a CUDA GPU or Numba's CUDA simulator: run them with "
             "NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/cuda")
PROBE = "from jitbp.cuda.api import cuda; raise SystemExit(0 if cuda.is_available() else 1)"


@functools.lru_cache(maxsize=None)
def missing_target():
    """Why no CUDA target can run here, or ``None``. The GPU probe runs in a child process
    so that this process never imports numba-cuda outside the CUDA tests."""
    if config.ENABLE_CUDASIM:
        return None
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True)
    return None if probe.returncode == 0 else NO_TARGET + " (no usable GPU found)"


@pytest.fixture(autouse=True)
def _cuda_target():
    reason = missing_target()
    if reason:
        pytest.skip(reason)
