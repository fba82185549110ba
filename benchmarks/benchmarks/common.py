"""Workloads shared by the asv suite and the side-by-side comparison script."""
import numpy as np

import jitbp

MLP_SIZES = (784, 256, 128, 10)
SEED_W = ([[0.1, -0.2], [0.3, 0.55]], [0.01, -0.02], [[0.37, 0.9], [-0.22, -0.12]], [0.31, 0.27])


def seed_net():
    """The 2-2-2 sigmoid network of seed article 002."""
    W1, b1, W2, b2 = SEED_W
    return jitbp.Sequential(jitbp.layer("dense", 2, 2, W=W1, b=b1), jitbp.layer("sigmoid"),
                            jitbp.layer("dense", 2, 2, W=W2, b=b2), jitbp.layer("sigmoid"))


def seed_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 2)), rng.uniform(0, 1, (n, 2))


def mlp(dtype=np.float32, sizes=MLP_SIZES, seed=0):
    """784-256-128-10 sigmoid MLP."""
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [jitbp.layer("dense", n_in, n_out, seed=seed + k), jitbp.layer("sigmoid")]
    return jitbp.Sequential(*layers, dtype=dtype)


def mlp_data(n, dtype=np.float32, seed=0, sizes=MLP_SIZES):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (n, sizes[0])).astype(dtype),
            rng.uniform(0, 1, (n, sizes[-1])).astype(dtype))


def mlp_flops_per_sample(sizes=MLP_SIZES):
    """Multiply-adds x2 of one training step per sample: forward, weight gradient, input delta
    (the first layer needs no input delta)."""
    total = 0
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        total += 2 * n_in * n_out * (2 if k == 0 else 3)
    return total
