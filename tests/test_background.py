"""JITBP_CAPTURE=auto: a captured epoch missing from the cache compiles in another process
while training runs interpreted, and the run switches to it once it is ready."""
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import jitbp
from jitbp.capture import background, cache
from jitbp.capture.cache import CacheWarning, cache_path

STEPS = dict(epochs=16, batch_size=4, shuffle=False)  # 64 steps: auto captures it


def small_net():
    return jitbp.Sequential(jitbp.layer("dense", 3, 5, seed=3), jitbp.layer("tanh"),
                            jitbp.layer("dense", 5, 2, seed=4))


@pytest.fixture
def data(rng):
    return rng.normal(size=(16, 3)), rng.normal(size=(16, 2))


@pytest.fixture
def auto(tmp_path, monkeypatch):
    """An empty cache, ``auto`` mode, and no background job or loaded epoch left over from other tests."""
    monkeypatch.setenv("JITBP_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("JITBP_CAPTURE", "auto")
    monkeypatch.setattr(background, "_jobs", {})
    monkeypatch.setattr(background, "_failed", set())
    monkeypatch.setattr(cache, "_ready", {})
    yield tmp_path


def reference(data, monkeypatch):
    """History and parameters of the same training on the interpreted engine."""
    net = small_net()
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    history = net.learn(*data, "mse", jitbp.SGD(lr=0.1), **STEPS)
    monkeypatch.setenv("JITBP_CAPTURE", "auto")
    return list(history), net.params


def assert_same(result, expected):
    (history, params), (want_history, want_params) = result, expected
    assert history == want_history
    for name in want_params:
        np.testing.assert_array_equal(params[name], want_params[name])


def test_training_starts_interpreted_and_switches_to_the_compiled_epoch(auto, data, capsys, monkeypatch):
    expected = reference(data, monkeypatch)
    net = small_net()
    first = net.learn(*data, "mse", jitbp.SGD(lr=0.1), **STEPS)
    (captured,) = net.engine._captured.values()
    assert captured.module is None  # every epoch ran interpreted: nothing waited for the compile
    assert "in the background" in capsys.readouterr().err
    assert_same((list(first), net.params), expected)
    (job,) = background._jobs.values()
    assert job.wait(timeout=600) == 0
    assert [name for name in os.listdir(cache_path()) if name.endswith(".ready")]
    net = small_net()
    second = net.learn(*data, "mse", jitbp.SGD(lr=0.1), **STEPS)
    (captured,) = net.engine._captured.values()
    assert captured.module is not None  # loaded from the cache the child filled
    assert_same((list(second), net.params), expected)
    assert not [name for name in os.listdir(cache_path()) if name.endswith(".lock")]


def test_a_failing_compile_warns_once_and_training_stays_interpreted(auto, data, monkeypatch):
    expected = reference(data, monkeypatch)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.warns(CacheWarning, match="in the background failed"):  # seen at a later epoch
        for _ in range(3):  # until the child has exited
            small_net().learn(*data, "mse", jitbp.SGD(lr=0.1), **STEPS)
            (job,) = background._jobs.values()
            job.wait(timeout=60)
    net = small_net()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        history = net.learn(*data, "mse", jitbp.SGD(lr=0.1), **STEPS)
    assert next(iter(net.engine._captured.values())).module is None
    assert_same((list(history), net.params), expected)
    assert len(background._jobs) == 1  # not started again


def lock_path(directory, net, data):
    """Start (with a child that does nothing) to learn the lock's name, then forget the job."""
    net.learn(*data, "mse", jitbp.SGD(lr=0.1), **STEPS)
    (job,) = background._jobs.values()
    job.wait(timeout=60)
    background._jobs.clear()
    (lock,) = [name for name in os.listdir(directory) if name.endswith(".log")]
    return os.path.join(directory, lock[:-len(".log")] + ".lock")


def test_a_compile_held_by_a_live_process_is_not_started_again_and_a_stale_lock_is_taken(auto, data,
                                                                                         monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/true")
    lock = lock_path(cache_path(), small_net(), data)
    with open(lock, "w") as handle:
        handle.write(str(os.getpid()))  # alive: as if another process compiled this epoch
    small_net().learn(*data, "mse", jitbp.SGD(lr=0.1), **STEPS)
    assert background._jobs == {}
    with open(lock, "w") as handle:
        handle.write(str(2 ** 22 + 12345))  # beyond pid_max's default: no such process
    small_net().learn(*data, "mse", jitbp.SGD(lr=0.1), **STEPS)
    assert len(background._jobs) == 1


def test_the_parent_exits_while_the_compile_goes_on(auto, tmp_path):
    script = textwrap.dedent("""
        import numpy as np, jitbp
        X, Y = np.ones((16, 3)), np.ones((16, 4))
        net = jitbp.Sequential(jitbp.layer("dense", 3, 4, seed=1), jitbp.layer("sigmoid"))
        net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=16, batch_size=4)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120,
                   env=dict(os.environ, JITBP_QUIET="1"))
    (lock,) = [name for name in os.listdir(cache_path()) if name.endswith(".lock")]
    with open(os.path.join(cache_path(), lock)) as handle:
        child = int(handle.read())
    os.kill(child, 0)  # still compiling after its parent returned
    os.kill(child, signal.SIGTERM)  # started by this test's child: end it
