"""A dropout / batchnorm MLP on scikit-learn's digits and on MNIST-1D, eval-mode accuracy.

dense -> batchnorm -> relu -> dropout -> dense -> batchnorm -> relu -> dropout -> dense,
trained with Adam on cross-entropy in float64. ``learn`` runs the layers in training
mode (batch statistics, dropout masks keyed by ``seed``); ``predict`` in prediction
mode (running statistics, no dropout). MNIST-1D is generated locally by the ``mnist1d``
package and skipped when it is not installed.

    python examples/dropout_batchnorm.py [--epochs 30] [--data digits mnist1d]
"""
import argparse
import time

import numpy as np

import jitbp


def digits():
    """``(X, y, X_test, y_test)``: the 8x8 digits scaled to [0, 1], 25% held out."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    return X_train, y_train, X_test, y_test


def mnist1d():
    """``(X, y, X_test, y_test)`` of MNIST-1D (4000 / 1000 samples of length 40), or ``None``."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        return None
    data = make_dataset(get_dataset_args())
    return data["x"], data["y"], data["x_test"], data["y_test"]


def build(n_in, n_out, hidden=128, p=0.2, seed=0):
    """The dropout / batchnorm MLP."""
    layers, width = [], n_in
    for k in range(2):
        layers += [jitbp.layer("dense", width, hidden, seed=seed + k), jitbp.layer("batchnorm", hidden),
                   jitbp.layer("relu"), jitbp.layer("dropout", p)]
        width = hidden
    layers.append(jitbp.layer("dense", width, n_out, seed=seed + 2))
    return jitbp.Sequential(*layers)


def run(name, data, epochs, seed=0):
    """Train on ``data``; print and return the eval-mode test accuracy."""
    X, y, X_test, y_test = data
    net = build(X.shape[1], int(y.max()) + 1, seed=seed)
    start = time.perf_counter()
    history = net.learn(X, y, loss="cross_entropy", optimizer=jitbp.Adam(lr=1e-3), epochs=epochs, batch_size=64,
                        seed=seed)
    elapsed = time.perf_counter() - start
    accuracy = float(np.mean(np.argmax(net.predict(X_test), axis=1) == y_test))
    print(f"{name}: {epochs} epochs in {elapsed:.1f} s (includes compiling), final loss {history[-1]:.4f}, "
          f"eval-mode test accuracy {accuracy:.1%}", flush=True)
    return accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--data", nargs="+", choices=("digits", "mnist1d"), default=["digits", "mnist1d"])
    args = parser.parse_args(argv)
    results = {}
    for name in args.data:
        data = digits() if name == "digits" else mnist1d()
        if data is None:
            print(f"{name}: skipped (pip install mnist1d)")
            continue
        results[name] = run(name, data, args.epochs)
    return results


if __name__ == "__main__":
    main()
