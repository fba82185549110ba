"""The README's main job: ``python -m jitbp demo`` trains on the digits and reports it."""
import subprocess
import sys

import pytest

pytest.importorskip("sklearn", reason="the demo's dataset needs the [demo] extra")


def test_demo_command_trains_the_digits_to_high_accuracy():
    out = subprocess.run([sys.executable, "-m", "jitbp", "demo"], capture_output=True, text=True, check=True,
                         timeout=600).stdout
    assert "1347 train / 450 test samples" in out
    accuracy = float(out.split("test accuracy ")[1].split("%")[0])
    assert accuracy >= 96.0, out
