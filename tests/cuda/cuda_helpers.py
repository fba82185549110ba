"""Build the same network on both devices and compare what they do; skip without a target.

The CUDA tests run under Numba's CUDA simulator or on a real GPU. The simulator must be
chosen before numba is imported, so it takes its own run:
``NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/cuda``. (The skip is a module mark,
not a conftest.py: tests/test_seeds.py imports helpers ``from conftest``, which a second,
package-less conftest.py would shadow.)
"""
import functools
import subprocess
import sys

import numpy as np
import pytest
from numba.core import config

import jitbp

NO_TARGET = ("CUDA tests need a CUDA GPU or Numba's CUDA simulator: run them with "
             "NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/cuda")
GPU_PROBE = "from jitbp.cuda.api import cuda; raise SystemExit(0 if cuda.is_available() else 1)"


@functools.lru_cache(maxsize=None)
def missing_target():
    """Why no CUDA target can run here, or ``None``. The GPU probe runs in a child process
    so that a CPU test run never imports numba-cuda itself."""
    if config.ENABLE_CUDASIM:
        return None
    probe = subprocess.run([sys.executable, "-c", GPU_PROBE], capture_output=True)
    return None if probe.returncode == 0 else NO_TARGET + " (no usable GPU found)"


#: ``pytestmark = needs_cuda`` in every CUDA test module.
needs_cuda = pytest.mark.skipif(missing_target() is not None, reason=str(missing_target()))

#: CUDA training must match CPU training this closely in float64.
TOLERANCE = 1e-9


def twins(build):
    """``(cpu_net, cuda_net)`` from ``build(device)``, which must seed every layer."""
    return build("cpu"), build("cuda")


def assert_close(actual, expected, tol=TOLERANCE, what=""):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, what
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    assert err <= tol, f"{what}: CUDA differs from CPU by {err:.3g} (allowed {tol:g})"


def assert_same_params(cpu, gpu, tol=TOLERANCE):
    assert list(cpu.params) == list(gpu.params)
    for key in cpu.params:
        assert_close(gpu.params[key], cpu.params[key], tol, key)


def train_both(build, X, Y, loss="mse", optimizer=lambda: jitbp.SGD(lr=0.1), tol=TOLERANCE, **kwargs):
    """Train twins identically; check histories and parameters agree and that training moved them."""
    cpu, gpu = twins(build)
    before = {key: value.copy() for key, value in cpu.params.items()}
    kwargs = {"epochs": 3, "batch_size": 2, "seed": 0, **kwargs}
    history_cpu = cpu.learn(X, Y, loss=loss, optimizer=optimizer(), **kwargs)
    history_gpu = gpu.learn(X, Y, loss=loss, optimizer=optimizer(), **kwargs)
    assert_close(history_gpu, history_cpu, tol, "loss history")
    assert_same_params(cpu, gpu, tol)
    moved = max((float(np.max(np.abs(cpu.params[k] - before[k]))) for k in before), default=1.0)
    assert moved > 1e-6, "training did not change any parameter: the comparison would be vacuous"
    return cpu, gpu
