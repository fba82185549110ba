"""Fit time and test accuracy of jitbp.sklearn.MLPClassifier next to scikit-learn's on digits.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python examples/digits_vs_sklearn.py

Same parameters for both (hidden_layer_sizes=(100,), adam, lr 1e-3, batch 200,
max_iter=100); CPU seconds (process_time) are reported next to wall seconds, which
are unreliable on a shared machine. The first jitbp fit loads compiled kernels and is
not timed.
"""
import time, warnings, numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.exceptions import ConvergenceWarning
from jitbp.sklearn import MLPClassifier
warnings.simplefilter("ignore", ConvergenceWarning)
X, y = load_digits(return_X_y=True); X = X / 16.0
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
params = dict(hidden_layer_sizes=(100,), max_iter=100, random_state=0)
MLPClassifier(**params).fit(Xtr[:50], ytr[:50])  # load compiled kernels once (not timed)
rows = []
for name, cls in (("jitbp.sklearn.MLPClassifier", MLPClassifier), ("sklearn.neural_network.MLPClassifier", SkMLP)):
    times, accs, walls = [], [], []
    for seed in range(3):
        est = cls(**{**params, "random_state": seed})
        t, c = time.perf_counter(), time.process_time(); est.fit(Xtr, ytr); times.append(time.process_time() - c); walls.append(time.perf_counter() - t)
        accs.append(est.score(Xte, yte))
    rows.append((name, np.median(times), np.mean(accs), est.n_iter_))
    print(f"{name:40s} fit CPU {np.median(times):.3f} s, wall {np.median(walls):.3f} s (medians of 3)  test accuracy {np.mean(accs):.4f}  n_iter_ {est.n_iter_}")
print(f"CPU fit-time ratio sklearn / jitbp: {rows[1][1] / rows[0][1]:.2f}x")
