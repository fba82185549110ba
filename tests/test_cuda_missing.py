"""``device="cuda"`` without numba-cuda names the extra to install (no GPU needed)."""
import os
import subprocess
import sys

CODE = """
import sys
sys.modules["numba_cuda"] = sys.modules["numba_cuda_mlir"] = None  # as if numba-cuda were not installed
import jitbp
try:
    jitbp.Sequential(jitbp.layer("dense", 2, 2, seed=0), device="cuda")
except RuntimeError as exc:
    print(type(exc).__name__, exc)
"""


def test_cuda_without_numba_cuda_names_the_cuda_extra():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=True).stdout
    assert out.startswith("CudaUnavailableError") and 'pip install "jitbp[cuda]"' in out, out
