"""The README's main job: ``python -m jitbp demo`` trains on the digits and reports it."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("sklearn", reason="the demo's dataset needs scikit-learn: the [demo] extra")


@pytest.mark.parametrize("capture", ["never", pytest.param("auto", marks=pytest.mark.slow)])
def test_demo_command_trains_the_digits_to_high_accuracy(capture):
    """``auto`` is how a user runs it: the captured epoch compiles (about a minute, cold)."""
    env = dict(os.environ, JITBP_CAPTURE=capture)
    out = subprocess.run([sys.executable, "-m", "jitbp", "demo"], capture_output=True, text=True, check=True,
                         timeout=600, env=env).stdout
    assert "1347 train / 450 test samples" in out
    accuracy = float(out.split("test accuracy ")[1].split("%")[0])
    assert accuracy >= 96.0, out
    assert "compiling (or loading from the disk cache) took" in out and "training" in out, out
