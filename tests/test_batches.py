"""Data bigger than memory: np.memmap inputs shuffled over the whole file, and sources of batches."""
import tracemalloc
import warnings

import numpy as np
import pytest

import jitbp
from jitbp.batches import OneShotBatchesWarning


def network(n_in=4, seed=0):
    return jitbp.Sequential(jitbp.layer("dense", n_in, 6, seed=seed), jitbp.layer("tanh"),
                            jitbp.layer("dense", 6, 2, seed=seed + 1))


def data(n=200, n_in=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)), rng.normal(size=(n, 2))


def memmap(tmp_path, name, array, dtype=None):
    path = tmp_path / f"{name}.npy"
    out = np.lib.format.open_memmap(path, "w+", dtype or array.dtype, array.shape)
    out[:] = array
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def same_params(a, b):
    return all(np.array_equal(a.params[key], b.params[key]) for key in a.params)


@pytest.mark.parametrize("capture", ["never", "always"])
def test_memmap_training_equals_in_memory_training_with_the_same_seed(tmp_path, monkeypatch, capture):
    monkeypatch.setenv("JITBP_CAPTURE", capture)
    X, Y = data()
    a, b = network(), network()
    expected = a.learn(X, Y, optimizer=jitbp.Adam(0.01), epochs=3, batch_size=32, seed=5)
    got = b.learn(memmap(tmp_path, "x", X), memmap(tmp_path, "y", Y), optimizer=jitbp.Adam(0.01), epochs=3,
                  batch_size=32, seed=5)
    assert list(got) == list(expected) and same_params(a, b)


def test_memmap_batches_are_gathered_from_random_rows_of_the_whole_file(tmp_path, monkeypatch):
    """Targets hold their row numbers, so the rows of every trained batch can be read back."""
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    n = 1000
    X = np.random.default_rng(1).normal(size=(n, 4))
    Y = np.repeat(np.arange(n, dtype=np.float64)[:, None], 2, axis=1) / n
    net = network()
    seen = []
    train_epoch = net.engine.train_epoch

    def spy(inputs, target, *args, **kwargs):
        seen.append(np.rint(target[:, 0] * n).astype(int))
        return train_epoch(inputs, target, *args, **kwargs)

    monkeypatch.setattr(net.engine, "train_epoch", spy)
    net.learn(memmap(tmp_path, "x", X), memmap(tmp_path, "y", Y), optimizer=jitbp.SGD(1e-6), epochs=1,
              batch_size=50, seed=3)
    assert len(seen) == 20 and all(len(rows) == 50 for rows in seen)
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(n))  # every row once in the epoch
    first = seen[0]
    assert first.min() < n // 10 and first.max() > n - n // 10  # one batch spans the whole file


def test_memmap_training_keeps_peak_memory_to_a_few_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    n, features = 100_000, 40  # 32 MB of float64 on disk
    rng = np.random.default_rng(2)
    X = memmap(tmp_path, "x", rng.normal(size=(n, features)))
    Y = memmap(tmp_path, "y", rng.normal(size=(n, 2)))
    net = network(features)
    net.learn(X[:2000], Y[:2000], epochs=1, batch_size=500, seed=0)  # warm-up: kernels and buffers
    limit = 4 * 2**20
    assert X.nbytes > 5 * limit
    tracemalloc.start()
    try:
        history = net.learn(X, Y, optimizer=jitbp.SGD(0.01), epochs=1, batch_size=500, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(history) == 1 and np.isfinite(history[0])
    assert peak < limit, f"peak {peak / 2**20:.1f} MiB for a {X.nbytes / 2**20:.0f} MiB memmap"


def test_a_memmap_of_another_dtype_is_converted_batch_by_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    X, Y = data()
    X32 = X.astype(np.float32)
    a, b = network(), network()
    a.learn(X32, Y, epochs=2, batch_size=64, seed=1)
    b.learn(memmap(tmp_path, "x", X32), Y, epochs=2, batch_size=64, seed=1)
    assert same_params(a, b)


def test_a_nan_in_a_memmap_names_its_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    X, Y = data()
    X[130, 2] = np.nan
    with pytest.raises(ValueError, match=r"batch 4 of epoch 1: X contains 1 NaN") as info:
        network().learn(memmap(tmp_path, "x", X), Y, epochs=1, batch_size=32, shuffle=False)
    assert info.value.batches_applied == 0  # rolled back to the start of the call


@pytest.mark.parametrize("kind", ["function", "list"])
@pytest.mark.parametrize("capture", ["never", "always"])
def test_a_source_of_batches_trains_as_the_same_batches_in_memory(monkeypatch, kind, capture):
    monkeypatch.setenv("JITBP_CAPTURE", capture)
    X, Y = data()
    batches = [(X[i:i + 32], Y[i:i + 32]) for i in range(0, len(X), 32)]
    source = (lambda: (pair for pair in batches)) if kind == "function" else batches
    a, b = network(), network()
    expected = a.learn(X, Y, optimizer=jitbp.Adam(0.01), epochs=3, batch_size=32, shuffle=False)
    got = b.learn(source, optimizer=jitbp.Adam(0.01), epochs=3)
    assert list(got) == list(expected) and same_params(a, b)


def test_a_one_shot_generator_trains_one_epoch_then_warns_and_stops():
    X, Y = data()
    gen = ((X[i:i + 50], Y[i:i + 50]) for i in range(0, len(X), 50))
    with pytest.warns(OneShotBatchesWarning, match="one-shot iterator") as record:
        history = network().learn(gen, epochs=3)
    assert record[0].filename == __file__  # points at the user's line
    assert len(history) == 1 and "one-shot" in history.stopped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        network().learn((pair for pair in [(X, Y)]), epochs=1)  # one epoch asked: no warning


@pytest.mark.parametrize("bad, message", [
    (lambda X, Y: (X[:, :3], Y), r"batch 2 of epoch 1: X must have shape \(n_samples, 4\)"),
    (lambda X, Y: (X.astype(str), Y), r"batch 2 of epoch 1: X must be real numbers"),
    (lambda X, Y: (X, np.full_like(Y, np.inf)), r"batch 2 of epoch 1: Y contains \d+ NaN or inf"),
    (lambda X, Y: (X, Y[:-1]), r"batch 2 of epoch 1: X has 20 samples but Y has 19"),
    (lambda X, Y: X, r"batch 2 of epoch 1 is a ndarray, not an \(X, Y\) pair"),
])
def test_a_bad_batch_is_refused_naming_it(bad, message):
    X, Y = data(n=100)
    batches = [(X[i:i + 20], Y[i:i + 20]) for i in range(0, 100, 20)]
    batches[2] = bad(*batches[2])
    net = network()
    before = {key: value.copy() for key, value in net.params.items()}
    with pytest.raises((TypeError, ValueError), match=message):
        net.learn(batches, epochs=2)
    assert all(np.array_equal(before[key], net.params[key]) for key in before)  # rolled back


def test_source_arguments_are_checked_before_training():
    X, Y = data()
    with pytest.raises(ValueError, match="leave batch_size=None"):
        network().learn([(X, Y)], batch_size=10)
    with pytest.raises(ValueError, match="validation_split"):
        network().learn([(X, Y)], validation_split=0.2)
    with pytest.raises(TypeError, match="source of \\(X, Y\\) batches"):
        network().learn(X)
    with pytest.raises(ValueError, match="no batches in epoch 1"):
        network().learn(lambda: iter(()), epochs=1)


def test_validation_and_metrics_with_a_source_of_batches():
    X, Y = data()
    history = network().learn(lambda: iter([(X[:100], Y[:100]), (X[100:], Y[100:])]), epochs=2,
                              validation=(X[:50], Y[:50]), metrics=["mae"])
    assert set(history.history) >= {"val_loss", "val_mae"} and "mae" not in history.history


def test_a_per_step_schedule_with_a_source_of_batches(monkeypatch):
    """A source's length is unknown ahead, so the schedule gives its own; the rates match
    the same batches trained from arrays in memory."""
    from jitbp.schedules import CosineLR

    monkeypatch.setenv("JITBP_CAPTURE", "never")
    X, Y = data()
    batches = [(X[i:i + 40], Y[i:i + 40]) for i in range(0, len(X), 40)]
    with pytest.raises(ValueError, match="its length in steps"):
        network().learn(batches, epochs=2, callbacks=[CosineLR(None, per="step")])
    a, b = network(), network()
    expected = a.learn(X, Y, optimizer=jitbp.SGD(0.1), epochs=2, batch_size=40, shuffle=False,
                       callbacks=[CosineLR(10, warmup=2, per="step")])
    got = b.learn(batches, optimizer=jitbp.SGD(0.1), epochs=2, callbacks=[CosineLR(10, warmup=2, per="step")])
    assert got.history["lr"] == expected.history["lr"] and same_params(a, b)
