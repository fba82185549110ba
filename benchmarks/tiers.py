"""Cost of the gradient tier against the fused tier on a dense layer: MLP 64-128-10, Adam, float64.

Run from the repository root: ``python -m benchmarks.tiers``. Prints samples per second of
captured-epoch training (compile excluded, best of 3) for the built-in contract-1 dense, a
contract-2 fused dense and a gradient-tier dense (same np.dot maths as the fused one), and
the ratios gradient / fused.
"""
import time

import numpy as np

import jitbp

from .benchmarks.tier_dense import FusedDense, GradientDense

N, EPOCHS, REPEATS = 8192, 3, 3


def builtin(n_in, n_out, seed):
    return jitbp.layer("dense", n_in, n_out, seed=seed)


def rate(make, batch, X, Y):
    net = jitbp.Sequential(make(64, 128, 0), jitbp.layer("tanh"), make(128, 10, 1))
    net.learn(X, Y, "mse", jitbp.Adam(lr=1e-3), epochs=1, batch_size=batch, seed=0)  # compile
    best = np.inf
    for _ in range(REPEATS):
        start = time.perf_counter()
        net.learn(X, Y, "mse", jitbp.Adam(lr=1e-3), epochs=EPOCHS, batch_size=batch, seed=0)
        best = min(best, time.perf_counter() - start)
    assert net.engine._captured["mse"].module is not None, "the captured epoch did not run"
    return N * EPOCHS / best


def main():
    import os

    os.environ["JITBP_CAPTURE"] = "always"
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(N, 64)), rng.normal(size=(N, 10))
    for batch in (32, 256):
        rates = {name: rate(make, batch, X, Y) for name, make in
                 (("dense (contract 1)", builtin), ("fused dense", FusedDense), ("gradient dense", GradientDense))}
        for name, value in rates.items():
            print(f"batch {batch:4d}  {name:20s} {value:12,.0f} samples/s")
        print(f"batch {batch:4d}  gradient / fused dense: {rates['gradient dense'] / rates['fused dense']:.3f}   "
              f"gradient / built-in dense: {rates['gradient dense'] / rates['dense (contract 1)']:.3f}")


if __name__ == "__main__":
    main()
