"""Train a small MLP on scikit-learn's bundled digits and plot its History.

    python examples/plot_history.py [docs/loss_curve.png]

Writes the loss / accuracy curves (training and validation) to the PNG named
(default docs/loss_curve.png, the picture in docs/guide.md). Needs scikit-learn and
matplotlib: pip install 'jitbp[sklearn,plot]' (tqdm, jitbp[progress], for the
live progress line).
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import jitbp  # noqa: E402
from jitbp.callbacks import EarlyStopping  # noqa: E402


def main(path="docs/loss_curve.png"):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    net = jitbp.Sequential(
        jitbp.layer("dense", 64, 64, init="he_uniform", seed=0), jitbp.layer("relu"),
        jitbp.layer("dense", 64, 10, init="glorot_uniform", seed=1),
    )
    history = net.learn(
        X_train, y_train, loss="cross_entropy", optimizer=jitbp.Adam(lr=1e-3), epochs=100, batch_size=32,
        seed=0, validation_split=0.2, metrics=["accuracy"],
        callbacks=[EarlyStopping("val_loss", patience=8, restore_best=True)], verbose=1,
    )
    accuracy = (net.predict_proba(X_test).argmax(axis=1) == y_test).mean()
    print(f"{len(history)} epochs, best epoch {history.best_epoch}, test accuracy {accuracy:.3f}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    history.plot(["loss", "val_loss"], ax=left)
    history.plot(["accuracy", "val_accuracy"], ax=right)
    left.set_title("cross-entropy (digits, 64-64-10 MLP)")
    right.set_title(f"accuracy (test {accuracy:.3f})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
