"""One network, several threads: every answer equals the serial one bit for bit."""
import sys
import threading

import numpy as np
import pytest

import jitbp

THREADS = 4
REPEATS = 60


@pytest.fixture(autouse=True)
def frequent_switches(monkeypatch):
    """Switch threads every microsecond or so, so that shared buffers would show."""
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def network():
    return jitbp.Sequential(jitbp.layer("dense", 16, 32, seed=0), jitbp.layer("tanh"),
                            jitbp.layer("dense", 32, 32, seed=1), jitbp.layer("tanh"),
                            jitbp.layer("dense", 32, 4, seed=2))


def data(seed, n=64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 16)), rng.normal(size=(n, 4))


def in_threads(work, count=THREADS):
    """Run ``work(k)`` in ``count`` threads at once; returns their results in order."""
    results, errors = [None] * count, []
    start = threading.Barrier(count)

    def run(k):
        try:
            start.wait()
            results[k] = work(k)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b)) if isinstance(a, list) else np.array_equal(a, b)


@pytest.mark.parametrize("call", [
    lambda net, X, Y: net.predict(X),
    lambda net, X, Y: net.loss(X, Y, "mse"),
    lambda net, X, Y: list(net.gradients(X, Y, "mse").values()),
], ids=["predict", "loss", "gradients"])
def test_concurrent_evaluation_matches_serial_results(call):
    net = network()
    inputs = [data(seed) for seed in range(THREADS)]
    expected = [call(net, X, Y) for X, Y in inputs]

    def work(k):
        X, Y = inputs[k]
        return sum(not equal(call(net, X, Y), expected[k]) for _ in range(REPEATS))

    assert in_threads(work) == [0] * THREADS  # wrong answers per thread


def test_predictions_during_learn_wait_and_learn_ends_as_if_alone():
    """Predictions made while another thread learns are those of the network before or
    after ``learn``, and ``learn`` ends in the weights it reaches alone."""
    X, Y = data(10, n=256)
    probe, _ = data(11)
    alone = network()
    before = alone.predict(probe)
    alone.learn(X, Y, "mse", jitbp.SGD(lr=0.01), epochs=4, batch_size=8, seed=0)
    after = alone.predict(probe)

    net = network()
    learning = threading.Event()

    def work(k):
        if k == 0:
            learning.set()
            return net.learn(X, Y, "mse", jitbp.SGD(lr=0.01), epochs=4, batch_size=8, seed=0)
        learning.wait()
        outputs = [net.predict(probe) for _ in range(REPEATS)]
        return sum(not (np.array_equal(out, before) or np.array_equal(out, after)) for out in outputs)

    results = in_threads(work)
    assert results[1:] == [0] * (THREADS - 1)  # predictions that match neither state
    for key, value in alone.params.items():
        np.testing.assert_array_equal(net.params[key], value, err_msg=key)
