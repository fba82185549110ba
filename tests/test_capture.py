"""The captured (compiled) epoch against the interpreted tape, and its on-disk cache."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

import jitbp
from jitbp.layers.dense import Dense
from graphs import data, graph

CASES = [
    ("mse", lambda: jitbp.SGD(lr=0.05, momentum=0.9), 4),
    ("cross_entropy", lambda: jitbp.Adam(lr=0.01), 3),
    ("half_sse", lambda: jitbp.SGD(lr=0.1), 1),
    ("bce", lambda: jitbp.Adagrad(lr=0.05), None),
]


def train(monkeypatch, mode, loss, make_optimizer, batch_size, seed=3):
    monkeypatch.setenv("JITBP_CAPTURE", mode)
    rng = np.random.default_rng(seed)
    net = graph(rng, loss)
    X, Y = data(rng, loss)
    optimizer = make_optimizer()
    history = net.learn(X, Y, loss, optimizer, epochs=3, batch_size=batch_size, seed=1)
    history += net.learn(X, Y, loss, optimizer, epochs=2, batch_size=batch_size, seed=2)
    return net, history


@pytest.mark.slow  # the fan-out graph: about a minute of compiling per loss
@pytest.mark.parametrize("loss, make_optimizer, batch_size", CASES)
def test_captured_epoch_matches_the_tape(monkeypatch, loss, make_optimizer, batch_size):
    """Same kernels, same order; only rounding may differ (LLVM may contract a
    multiply-add differently once kernels are linked into the epoch)."""
    interpreted, h1 = train(monkeypatch, "never", loss, make_optimizer, batch_size)
    captured, h2 = train(monkeypatch, "always", loss, make_optimizer, batch_size)
    assert captured.engine._captured[loss] is not None  # the compiled path really ran
    np.testing.assert_allclose(h2, h1, rtol=1e-13)
    for key in interpreted.params:
        np.testing.assert_allclose(captured.params[key], interpreted.params[key], rtol=1e-12, atol=1e-15,
                                   err_msg=key)


def test_captured_divergence_leaves_the_failing_batch_unapplied(monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "always")
    net = jitbp.Sequential(jitbp.layer("dense", 1, 1, bias=False, W=[[1.0]]))
    X, Y = np.array([[1.0], [1e200], [1.0]]), np.array([[1.0], [0.0], [1.0]])
    with pytest.raises(FloatingPointError, match="batch 2"):
        net.learn(X, Y, "sse", jitbp.SGD(lr=0.1), epochs=1, batch_size=1, shuffle=False)
    assert net.params["dense_0.W"][0, 0] == 1.0  # the first batch had zero error


def two_branches(rng, squash=True):
    """Two dense layers above dense.TINY_WEIGHTS fed by the input: both run the next
    batch's forward inside their backward (``backward_forward_kernel``)."""
    x = jitbp.Input(12)
    joined = jitbp.layer("add")(jitbp.layer("dense", 12, 9, seed=int(rng.integers(99)))(x),
                                jitbp.layer("dense", 12, 9, bias=False, seed=int(rng.integers(99)))(x))
    return jitbp.Network(x, jitbp.layer("dense", 9, 2, seed=1)(jitbp.layer("tanh")(joined) if squash else joined))


@pytest.mark.slow  # compiling this epoch took 118 s of a 12-minute run
@pytest.mark.parametrize("make_optimizer, batch_size", [
    (lambda: jitbp.SGD(lr=0.05), 1),  # the fused single-pass kernel
    (lambda: jitbp.SGD(lr=0.05, momentum=0.9), 1),  # backward, then forward
    (lambda: jitbp.SGD(lr=0.05), 3),  # 7 samples: a partial last batch
])
def test_next_forward_inside_the_backward_matches_the_tape(monkeypatch, make_optimizer, batch_size):
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(7, 12)), rng.normal(size=(7, 2))
    results = []
    for mode in ("never", "always"):
        monkeypatch.setenv("JITBP_CAPTURE", mode)
        net = two_branches(np.random.default_rng(0))
        history = net.learn(X, Y, "mse", make_optimizer(), epochs=3, batch_size=batch_size, seed=4)
        results.append((net, history))
    (interpreted, h1), (captured, h2) = results
    assert sorted(captured.engine._captured["mse"]._ahead) == [0, 1]
    np.testing.assert_allclose(h2, h1, rtol=1e-12)
    for key in interpreted.params:
        np.testing.assert_allclose(captured.params[key], interpreted.params[key], rtol=1e-12, atol=1e-15,
                                   err_msg=key)


@njit(cache=True)
def frozen_backward(xs, y, dy, dxs, need_dx, params, rule, hyper, states, ws):
    """A replaced dense backward that never updates W."""
    if need_dx:
        dxs[0][:, :] = np.dot(dy, params[0])


class FrozenDense(Dense):
    kind = "frozen_dense"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.backward_kernel = frozen_backward


def test_a_subclass_that_replaces_the_backward_gets_no_fused_kernel(monkeypatch):
    """Dense's fused kernel would bypass the subclass's backward."""
    assert Dense(12, 9).backward_forward_kernel is not None
    assert FrozenDense(12, 9).backward_forward_kernel is None
    monkeypatch.setenv("JITBP_CAPTURE", "always")
    frozen = FrozenDense(12, 9, seed=0)
    before = frozen.params["W"].copy()
    net = jitbp.Sequential(frozen, jitbp.layer("tanh"), jitbp.layer("dense", 9, 2, seed=1))
    rng = np.random.default_rng(0)
    net.learn(rng.normal(size=(6, 12)), rng.normal(size=(6, 2)), "mse", jitbp.SGD(lr=0.1), batch_size=1)
    np.testing.assert_array_equal(frozen.params["W"], before)


def test_next_forward_of_a_diverging_batch_changes_nothing(monkeypatch):
    """What the engine leaves behind, before learn rolls back to its checkpoint (off here)."""
    monkeypatch.setattr(jitbp.divergence.Checkpoint, "restore", lambda self: None)
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(4, 12)), rng.normal(size=(4, 2))
    X[2] = 1e200
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    expected = two_branches(np.random.default_rng(0), squash=False)
    expected.learn(X[:2], Y[:2], "sse", jitbp.SGD(lr=0.01), batch_size=1, shuffle=False)
    monkeypatch.setenv("JITBP_CAPTURE", "always")
    net = two_branches(np.random.default_rng(0), squash=False)
    with pytest.raises(FloatingPointError, match="batch 3"):
        net.learn(X, Y, "sse", jitbp.SGD(lr=0.01), batch_size=1, shuffle=False)
    for key in expected.params:  # two steps applied, the third not (rounding: the fused dot products)
        np.testing.assert_allclose(net.params[key], expected.params[key], rtol=1e-12, atol=1e-15, err_msg=key)


def test_second_process_loads_the_captured_epoch_from_cache(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, jitbp
        net = jitbp.Sequential(jitbp.layer("dense", 3, 2, seed=0), jitbp.layer("tanh"))
        X = np.ones((8, 3)); Y = np.zeros((8, 2))
        net.learn(X, Y, "mse", jitbp.SGD(lr=0.1), epochs=2, batch_size=2)
        epoch = net.engine._captured["mse"].module.epoch
        print(sum(epoch.stats.cache_hits.values()), sum(epoch.stats.cache_misses.values()))
    """)
    env = dict(os.environ, JITBP_CAPTURE="always", JITBP_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]
    first, second = (tuple(map(int, run.stdout.split())) for run in runs)
    assert first == (0, 1)
    assert second == (1, 0)


def test_editing_a_kernel_source_changes_the_captured_module(tmp_path, monkeypatch):
    """Numba links kernels into the compiled epoch; a changed kernel file must not reuse it."""
    from jitbp.capture import source_fingerprint

    package = tmp_path / "fake_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "kernels.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = source_fingerprint(["fake_plugin"])
    assert source_fingerprint(["fake_plugin"]) == before
    (package / "kernels.py").write_text("x = 22\n")
    assert source_fingerprint(["fake_plugin"]) != before


def test_cache_command_reports_and_clears_captured_epochs(tmp_path, monkeypatch, capsys):
    from jitbp.cli import main

    monkeypatch.setenv("JITBP_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("JITBP_CAPTURE", "always")
    # a graph and loss no other test captures: a module already imported is not written again
    net = jitbp.Sequential(jitbp.layer("dense", 7, 3, seed=0), jitbp.layer("tanh"), jitbp.layer("dense", 3, 2))
    net.learn(np.ones((4, 7)), np.ones((4, 2)), "mae", batch_size=1)
    assert main(["cache"]) == 0
    assert ": 1 captured epoch(s)" in capsys.readouterr().out
    assert main(["cache", "--clear"]) == 0
    assert "removed 1 captured epoch(s)" in capsys.readouterr().out
    assert main(["cache"]) == 0
    assert ": 0 captured epoch(s), 0.0 MiB" in capsys.readouterr().out


def contract2_graph():
    """Every tier in one graph: a free layer on the input (its backward skipped), a shared
    gradient-tier layer, a free leaky ReLU, a random mask, a fused layer with a context and state."""
    from tier_layers import CountedScale, GradScale, Leaky, Mask

    x = jitbp.Input(3)
    h = jitbp.layer("dense", 3, 4, seed=0)(Leaky(3, slope=0.2)(x))
    scale = GradScale(4)
    h = CountedScale(4)(Mask(4, p=0.3)(Leaky(4, slope=0.1)(scale(scale(h)))))
    return jitbp.Network(x, jitbp.layer("dense", 4, 2, seed=1)(h))


def train_contract2(monkeypatch, mode):
    monkeypatch.setenv("JITBP_CAPTURE", mode)
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(22, 3)), rng.normal(size=(22, 2))
    net = contract2_graph()
    optimizer = jitbp.Adam(lr=0.01)
    history = net.learn(X, Y, "mse", optimizer, epochs=3, batch_size=5, seed=9)
    history += net.learn(X, Y, "mse", optimizer, epochs=2, batch_size=5, seed=10)
    return net, history


def test_captured_epoch_runs_every_tier_like_the_tape(monkeypatch):
    interpreted, h1 = train_contract2(monkeypatch, "never")
    captured, h2 = train_contract2(monkeypatch, "always")
    assert captured.engine._captured["mse"] is not None and captured.engine._captured["mse"].module is not None
    assert list(h2) == list(h1)
    for key in interpreted.params:
        np.testing.assert_array_equal(captured.params[key], interpreted.params[key], err_msg=key)
    counts = [layer.state["count"][0] for net in (interpreted, captured) for layer in net.layers if layer.state]
    assert counts == [25, 25]  # 5 batches x 5 epochs, training forwards only
