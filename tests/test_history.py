"""learn() returns a History: the epoch losses as a list, plus validation, metrics, lr, seconds."""
import io
import warnings

import numpy as np
import pytest

import jitbp
from jitbp.callbacks import EarlyStopping, ModelCheckpoint
from jitbp.history import History
from jitbp.metrics import accuracy, get_metric, mae, mse, r2, top_k_accuracy
from jitbp.monitor import DoubleSoftmaxWarning
from jitbp.progress import Progress, resolve_verbose


@pytest.fixture(autouse=True)
def _interpreted(monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "never")


def classifier(seed=0, n_in=4, hidden=8, classes=3):
    return jitbp.Sequential(jitbp.layer("dense", n_in, hidden, seed=seed), jitbp.layer("tanh"),
                            jitbp.layer("dense", hidden, classes, seed=seed + 1))


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) + 2.0 * np.eye(3, 4)[y]
    return X, y


def test_history_is_the_list_of_losses():
    X, y = blobs()
    net = classifier()
    h = net.learn(X, y, loss="cross_entropy", optimizer=jitbp.SGD(0.1), epochs=3, batch_size=16, seed=1)
    assert isinstance(h, History) and isinstance(h, list) and len(h) == 3
    assert h == h.history["loss"] and h[:2] == list(h)[:2]
    assert set(h.history) == {"loss", "lr", "seconds"}
    assert h.history["lr"] == [0.1] * 3 and all(s >= 0 for s in h.history["seconds"])
    assert h.epochs[0]["epoch"] == 1 and h.last()["loss"] == h[-1]


def test_validation_loss_and_metrics_match_loss_and_predict():
    X, y = blobs()
    Xv, yv = blobs(60, seed=5)
    net = classifier()
    h = net.learn(X, y, loss="cross_entropy", optimizer=jitbp.Adam(0.01), epochs=4, batch_size=32, seed=0,
                  validation=(Xv, yv), metrics=["accuracy", "top_2_accuracy", accuracy])
    assert h.history["val_loss"][-1] == pytest.approx(net.loss(Xv, yv, "cross_entropy"))
    pred = net.predict(Xv)
    assert h.history["val_accuracy"][-1] == pytest.approx(np.mean(pred.argmax(1) == yv))
    assert h.history["accuracy"][-1] == pytest.approx(np.mean(net.predict(X).argmax(1) == y))
    top2 = np.argsort(-pred, axis=1)[:, :2]
    assert h.history["val_top_2_accuracy"][-1] == pytest.approx(np.mean((top2 == yv[:, None]).any(1)))


def test_validation_split_takes_the_last_samples():
    X, y = blobs(100)
    a, b = classifier(), classifier()
    ha = a.learn(X, y, loss="cross_entropy", optimizer=jitbp.SGD(0.1), epochs=2, batch_size=10, seed=3,
                 validation_split=0.2)
    hb = b.learn(X[:80], y[:80], loss="cross_entropy", optimizer=jitbp.SGD(0.1), epochs=2, batch_size=10,
                 seed=3, validation=(X[80:], y[80:]))
    assert ha == hb and ha.history["val_loss"] == hb.history["val_loss"]
    with pytest.raises(ValueError, match="validation_split"):
        classifier().learn(X, y, loss="cross_entropy", validation_split=1.5)
    with pytest.raises(ValueError, match="not both"):
        classifier().learn(X, y, loss="cross_entropy", validation_split=0.5, validation=(X, y))


def test_metrics_against_sklearn():
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the oracle for the metrics")
    rng = np.random.default_rng(0)
    t, p = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    assert mse(t, p) == pytest.approx(metrics.mean_squared_error(t, p))
    assert mae(t, p) == pytest.approx(metrics.mean_absolute_error(t, p))
    assert r2(t, p) == pytest.approx(metrics.r2_score(t, p))
    labels, scores = rng.integers(0, 5, 50), rng.normal(size=(50, 5))
    assert accuracy(labels, scores) == pytest.approx(metrics.accuracy_score(labels, scores.argmax(1)))
    assert top_k_accuracy(3)(labels, scores) == pytest.approx(
        metrics.top_k_accuracy_score(labels, scores, k=3, labels=range(5)))
    probs = rng.random((50, 1))
    binary = rng.integers(0, 2, (50, 1))
    assert accuracy(binary, probs) == pytest.approx(np.mean((probs > 0.5) == binary))
    with pytest.raises(jitbp.UnknownNameError, match="known metrics"):
        get_metric("f2")


def test_early_stopping_restores_the_best_weights(tmp_path):
    X, y = blobs(60)
    Xv, yv = blobs(60, seed=9)
    net = classifier(hidden=16)
    snapshots = []
    stopper = EarlyStopping("val_loss", patience=2, restore_best=True)
    ckpt = ModelCheckpoint(tmp_path / "best.jitbp", monitor="val_loss")
    keep = lambda epoch, logs: snapshots.append({k: v.copy() for k, v in net.params.items()})  # noqa: E731
    # A large learning rate overfits the small training set quickly: val_loss turns up.
    h = net.learn(X, y, loss="cross_entropy", optimizer=jitbp.Adam(0.05), epochs=200, batch_size=8, seed=0,
                  validation=(Xv, yv), callbacks=[keep, stopper, ckpt])
    best = int(np.argmin(h.history["val_loss"]))
    assert len(h) < 200 and len(h) == best + 1 + 2 and h.best_epoch == best + 1
    assert "EarlyStopping" in h.stopped
    for key, value in net.params.items():
        np.testing.assert_array_equal(value, snapshots[best][key])
    assert net.loss(Xv, yv, "cross_entropy") == pytest.approx(min(h.history["val_loss"]))
    saved = jitbp.load(tmp_path / "best.jitbp")
    np.testing.assert_array_equal(saved.predict(Xv), net.predict(Xv))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_callback_stops_training_and_a_missing_monitor_is_explained():
    X, y = blobs(30)
    h = classifier().learn(X, y, loss="cross_entropy", epochs=10, callbacks=lambda epoch, logs: epoch == 3)
    assert len(h) == 3
    with pytest.raises(ValueError, match="validation="):
        classifier().learn(X, y, loss="cross_entropy", epochs=2, callbacks=[EarlyStopping()])


def test_checkpoint_every_epoch_formats_the_path(tmp_path):
    X, y = blobs(30)
    ckpt = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{loss:.3f}.jitbp"), monitor="loss", save_best_only=False)
    classifier().learn(X, y, loss="cross_entropy", epochs=3, callbacks=[ckpt])
    assert [p.split("/")[-1][:4] for p in ckpt.saved] == ["m-01", "m-02", "m-03"]


def test_progress_plain_text_and_auto(capsys):
    X, y = blobs(40)
    classifier().learn(X, y, loss="cross_entropy", epochs=3, validation_split=0.25, metrics=["accuracy"],
                       verbose=2)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and err[0].startswith("epoch 1/3 - loss ") and "val_accuracy" in err[0]
    assert "ETA" in err[0] and "ETA" not in err[-1]
    classifier().learn(X, y, loss="cross_entropy", epochs=2)  # stderr is no terminal here: silent
    assert capsys.readouterr().err == ""
    classifier().learn(X, y, loss="cross_entropy", epochs=2, verbose=0)
    assert capsys.readouterr().err == ""

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert resolve_verbose(None, Tty()) == 1 and resolve_verbose(None, io.StringIO()) == 0
    with pytest.raises(ValueError, match="verbose"):
        resolve_verbose(3)


def test_progress_tqdm_line():
    pytest.importorskip("tqdm", reason="the live line uses tqdm when it is installed")
    stream = io.StringIO()
    progress = Progress(2, verbose=1, stream=stream)
    assert progress.bar is not None
    progress.epoch_end(1, {"loss": 0.5, "val_loss": 0.7, "lr": 0.1, "seconds": 0.01})
    progress.close()
    assert "val_loss 0.7" in stream.getvalue() and "2/2" not in stream.getvalue()
    fallback = io.StringIO()
    plain = Progress(2, verbose=1, stream=fallback, use_tqdm=False)
    plain.epoch_end(1, {"loss": 0.5, "seconds": 0.01})
    assert fallback.getvalue().startswith("epoch 1/2 - loss 0.5")


def test_plot(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="History.plot draws with matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    X, y = blobs(40)
    h = classifier().learn(X, y, loss="cross_entropy", epochs=3, validation_split=0.25, metrics=["accuracy"])
    ax = h.plot(path=tmp_path / "curve.png")
    assert {line.get_label() for line in ax.get_lines()} >= {"loss", "val_loss", "accuracy"}
    assert (tmp_path / "curve.png").stat().st_size > 1000
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"jitbp\[plot\]"):
        h.plot()


def test_predict_proba_and_double_softmax_warning():
    X, y = blobs(40)
    net = classifier()
    with pytest.raises(ValueError, match="loss"):
        net.predict_proba(X)
    net.learn(X, y, loss="cross_entropy", epochs=2)
    p = net.predict_proba(X)
    logits = net.predict(X)
    np.testing.assert_allclose(p, np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    sig = jitbp.Sequential(jitbp.layer("dense", 4, 1, seed=0), jitbp.layer("sigmoid"))
    sig.learn(X, (y == 1).astype(float)[:, None], loss="bce", epochs=1)
    np.testing.assert_array_equal(sig.predict_proba(X), sig.predict(X))
    with pytest.raises(ValueError, match="predict"):
        net.predict_proba(X, loss="mse")
    double = jitbp.Sequential(jitbp.layer("dense", 4, 3, seed=0), jitbp.layer("softmax"))
    with pytest.warns(DoubleSoftmaxWarning, match="twice"):
        double.learn(X, y, loss="cross_entropy", epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classifier().learn(X, y, loss="cross_entropy", epochs=1)


def test_network_pickles_through_its_model_file():
    import pickle

    X, y = blobs(40)
    net = classifier()
    net.learn(X, y, loss="cross_entropy", epochs=2)
    copy = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(copy.predict(X), net.predict(X))
    np.testing.assert_array_equal(copy.predict_proba(X), net.predict_proba(X))


def test_tol_and_patience_set_stopped_with_the_reason():
    X, y = blobs()
    net = classifier()
    h = net.learn(X, y, loss="cross_entropy", optimizer=jitbp.SGD(1e-9), epochs=50, batch_size=40, seed=1,
                  tol=1.0, patience=3)
    assert len(h) == 4  # the first epoch sets the best; none of the next three beats it by 1.0
    assert h.stopped.startswith("tol:") and "3 epoch(s)" in h.stopped
    full = classifier().learn(X, y, loss="cross_entropy", optimizer=jitbp.SGD(0.1), epochs=4, batch_size=40,
                              tol=1e-12, patience=3)
    assert len(full) == 4 and full.stopped is None
