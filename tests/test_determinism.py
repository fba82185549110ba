"""Determinism: the same seeds give bit-identical weights across runs and across processes."""
import hashlib
import subprocess
import sys

import numpy as np
import pytest

import jitbp

SCRIPT = '''
import hashlib, sys
import numpy as np
import jitbp

def train(optimizer, batch_size, seed, dtype):
    net = jitbp.Sequential(jitbp.layer("dense", 32, 64, seed=seed), jitbp.layer("tanh"),
                           jitbp.layer("dense", 64, 10, seed=seed + 1), dtype=dtype)
    data = np.random.default_rng(seed)
    X, labels = data.normal(size=(200, 32)), data.integers(0, 10, 200)
    net.learn(X, labels, loss="cross_entropy", optimizer=optimizer, epochs=3, batch_size=batch_size, seed=seed)
    digest = hashlib.sha256()
    for key, value in net.params.items():
        digest.update(key.encode() + value.tobytes())
    return digest.hexdigest()

CASES = [(lambda: jitbp.SGD(0.05, momentum=0.9), 1, np.float64),
         (lambda: jitbp.Adam(1e-3), 64, np.float64),
         (lambda: jitbp.RMSprop(1e-3), None, np.float32),
         (lambda: jitbp.Adagrad(0.05), 7, np.float32)]

if __name__ == "__main__":
    print(" ".join(train(make(), batch_size, 0, dtype) for make, batch_size, dtype in CASES))
'''


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("determinism") / "train_digest.py"
    path.write_text(SCRIPT)
    namespace = {"__name__": "determinism_script"}
    exec(compile(SCRIPT, str(path), "exec"), namespace)
    return path, namespace


def digests(namespace, seed=0):
    return [namespace["train"](make(), batch_size, seed, dtype) for make, batch_size, dtype in namespace["CASES"]]


def test_same_seed_gives_identical_weights_in_one_process(script):
    _, namespace = script
    assert digests(namespace) == digests(namespace)


def test_different_seeds_give_different_weights(script):
    _, namespace = script
    first, other = digests(namespace, 0), digests(namespace, 1)
    assert all(a != b for a, b in zip(first, other))


@pytest.mark.parametrize("capture", ["never", pytest.param("always", marks=pytest.mark.slow)])
def test_same_seed_gives_identical_weights_in_another_process(script, monkeypatch, capture):
    path, namespace = script
    monkeypatch.setenv("JITBP_CAPTURE", capture)
    here = digests(namespace)
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.split() == here


def test_layer_initialisation_is_seeded():
    a = jitbp.layer("dense", 4, 3, seed=7).params
    b = jitbp.layer("dense", 4, 3, seed=7).params
    c = jitbp.layer("dense", 4, 3, seed=8).params
    assert a["W"].tobytes() == b["W"].tobytes() and a["b"].tobytes() == b["b"].tobytes()
    assert a["W"].tobytes() != c["W"].tobytes()


def test_shuffle_order_depends_only_on_the_seed():
    def trained(seed):
        net = jitbp.Sequential(jitbp.layer("dense", 2, 1, seed=0))
        data = np.random.default_rng(0)
        net.learn(data.normal(size=(9, 2)), data.normal(size=(9, 1)), optimizer=jitbp.SGD(0.1),
                  epochs=2, batch_size=2, seed=seed)
        return hashlib.sha256(net.params["dense_0.W"].tobytes()).hexdigest()

    assert trained(3) == trained(3) != trained(4)
