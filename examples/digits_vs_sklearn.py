"""Fit time and test accuracy of jitbp.sklearn.MLPClassifier next to scikit-learn's on digits.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python examples/digits_vs_sklearn.py

Same parameters for both (hidden_layer_sizes=(100,), adam, lr 1e-3, batch 200,
max_iter=100); CPU seconds (process_time) are reported next to wall seconds, which
are unreliable on a shared machine. The first jitbp fit loads compiled kernels and is
not timed.
"""
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP

from jitbp.sklearn import MLPClassifier

PARAMS = dict(hidden_layer_sizes=(100,), max_iter=100)


def measure(cls, X_train, y_train, X_test, y_test, seeds=3):
    cpu, wall, accuracy = [], [], []
    for seed in range(seeds):
        estimator = cls(**PARAMS, random_state=seed)
        t, c = time.perf_counter(), time.process_time()
        estimator.fit(X_train, y_train)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
        accuracy.append(estimator.score(X_test, y_test))
    return np.median(cpu), np.median(wall), np.mean(accuracy)


def main():
    warnings.simplefilter("ignore", ConvergenceWarning)  # both stop at max_iter
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    MLPClassifier(**PARAMS).fit(X_train[:50], y_train[:50])  # load the compiled kernels (not timed)
    results = {}
    for name, cls in (("jitbp.sklearn.MLPClassifier", MLPClassifier),
                      ("sklearn.neural_network.MLPClassifier", SklearnMLP)):
        results[name] = cpu, wall, accuracy = measure(cls, X_train, y_train, X_test, y_test)
        print(f"{name:38s} fit CPU {cpu:.3f} s, wall {wall:.3f} s (medians of 3)  test accuracy {accuracy:.4f}")
    (jit, _, _), (skl, _, _) = results.values()
    print(f"CPU fit-time ratio sklearn / jitbp: {skl / jit:.2f}x")


if __name__ == "__main__":
    main()
