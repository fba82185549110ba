"""A counter-based random stream: each number is a hash of (key, step, element).

Nothing is stored and nothing advances: a layer asks for the number of element ``i``
of step ``ctx.step`` under its key ``ctx.seed``, so masks repeat bit for bit for the
same seed and agree across the interpreted, captured and CUDA paths, whatever the
order elements are visited in. The hash is SplitMix64's finalizer (Steele, Lea and
Flood, 2014), a bijection of 64-bit integers with full avalanche.
"""
import numpy as np

from .scalar import scalar

GOLDEN = 0x9E3779B97F4A7C15
MIX1, MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
#: 2**-53: a 53-bit integer times this is a float64 in [0, 1).
UNIT = 1.0 / 9007199254740992.0


@scalar
def mix(z):
    """SplitMix64's finalizer of the uint64 ``z``."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


@scalar
def uniform(seed, step, i):
    """The float64 in [0, 1) of element ``i`` at ``step`` under key ``seed``."""
    z = mix(np.uint64(seed) + np.uint64(step) * np.uint64(GOLDEN))
    z = mix(z + np.uint64(i) * np.uint64(GOLDEN) + np.uint64(1))
    return np.float64(z >> np.uint64(11)) * UNIT


def call_seed(run_seed, call_index):
    """The key of call ``call_index`` of a graph in a run seeded with ``run_seed`` (uint64)."""
    with np.errstate(over="ignore"):
        return np.uint64(mix(np.uint64(run_seed) ^ (np.uint64(call_index) * np.uint64(GOLDEN))))
