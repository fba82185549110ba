import numpy as np
import pytest

import jitbp


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def seed_network():
    """The 2-2-2 sigmoid network of seed article 002."""
    hidden = jitbp.layer("dense", 2, 2, W=[[0.1, -0.2], [0.3, 0.55]], b=[0.01, -0.02])
    output = jitbp.layer("dense", 2, 2, W=[[0.37, 0.9], [-0.22, -0.12]], b=[0.31, 0.27])
    return jitbp.Sequential(hidden, jitbp.layer("sigmoid"), output, jitbp.layer("sigmoid"))
