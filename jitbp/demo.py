"""The demo: train an MLP on scikit-learn's bundled handwritten digits and report accuracy."""
import time

import numpy as np

import jitbp
from jitbp.capture import CAPTURE_MIN_STEPS


def load_digits(seed=0, test_fraction=0.25):
    """Digits scaled to [0, 1], split into train and test by a seeded permutation."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise SystemExit("the demo needs scikit-learn for its dataset: pip install 'jitbp[demo]'") from None
    data = sk_load_digits()
    X = data.data / 16.0
    y = data.target
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(len(y) * (1 - test_fraction))
    return X[order[:cut]], y[order[:cut]], X[order[cut:]], y[order[cut:]]


def build(seed=0, hidden=128):
    return jitbp.Sequential(
        jitbp.layer("dense", 64, hidden, seed=seed),
        jitbp.layer("relu"),
        jitbp.layer("dense", hidden, 10, seed=seed + 1),
    )


def compile_seconds(X, y, batch_size, seed):
    """Seconds to compile the demo's kernels and captured epoch, or load them from the
    disk caches: a throwaway network of the same graph trains on one batch for just
    enough steps to be captured, so the timed run below compiles nothing."""
    start = time.perf_counter()
    build(seed).learn(X[:batch_size], y[:batch_size], loss="cross_entropy", optimizer=jitbp.Adam(lr=1e-3),
                      epochs=CAPTURE_MIN_STEPS, batch_size=batch_size, seed=seed)
    return time.perf_counter() - start


def main(epochs=30, batch_size=32, seed=0):
    X_train, y_train, X_test, y_test = load_digits(seed)
    compiling = compile_seconds(X_train, y_train, batch_size, seed)
    net = build(seed)
    start = time.perf_counter()
    history = net.learn(X_train, y_train, loss="cross_entropy", optimizer=jitbp.Adam(lr=1e-3),
                        epochs=epochs, batch_size=batch_size, seed=seed)
    training = time.perf_counter() - start
    accuracy = float(np.mean(net.predict(X_test).argmax(axis=1) == y_test))
    print(f"digits: {len(y_train)} train / {len(y_test)} test samples, MLP 64-128-10, Adam, "
          f"{epochs} epochs of batch {batch_size}")
    print(f"loss {history[0]:.4f} -> {history[-1]:.4f}; test accuracy {accuracy:.2%}")
    print(f"compiling (or loading from the disk cache) took {compiling:.2f} s, training {training:.2f} s")
    return accuracy
