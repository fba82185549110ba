"""The generated source of a small fan-out graph, kept as a golden file so a reader sees what is emitted.

After a deliberate change to code generation, rewrite it with ``JITBP_UPDATE_GOLDEN=1``
and read the diff.
"""
import os
import re
from pathlib import Path

import jitbp
from jitbp.capture.codegen import Source
from jitbp.losses import get_loss

GOLDEN = Path(__file__).parent / "golden" / "fan_out_epoch.py.golden"


def fan_out_network():
    """The input feeds a dense layer (large enough to run the next batch's forward inside its
    backward) whose output fans out to two activations, summed again."""
    x = jitbp.Input(12)
    hidden = jitbp.layer("dense", 12, 9, seed=0)(x)
    joined = jitbp.layer("add")(jitbp.layer("tanh")(hidden), jitbp.layer("sigmoid")(hidden))
    return jitbp.Network(x, jitbp.layer("dense", 9, 2, seed=1)(joined))


def test_generated_source_of_a_fan_out_graph_matches_the_golden_file():
    loss = get_loss("mse")
    text = Source(fan_out_network(), loss).text(loss)
    # the fingerprint hashes file sizes and mtimes of this checkout
    text = re.sub(r"(# kernel sources: )[0-9a-f]{16}", r"\1<fingerprint>", text)
    if os.environ.get("JITBP_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
