"""Model files: exact path, atomic write, bit-exact round trips, resuming, damaged and foreign files."""
import json
import os
import zipfile

import numpy as np
import pytest

import jitbp
from jitbp.hookspecs import hookimpl
from jitbp.layers.dense import Dense
from jitbp.plugins import registry

OPTIMIZERS = [
    lambda: jitbp.SGD(0.1, momentum=0.9, nesterov=True),
    lambda: jitbp.Adam(lr=0.01),
    lambda: jitbp.RMSprop(lr=0.01),
    lambda: jitbp.Adagrad(lr=0.1, lr_decay=0.01),
]


def chain(dtype=np.float64):
    return jitbp.Sequential(jitbp.layer("dense", 3, 5, seed=0), jitbp.layer("tanh"),
                            jitbp.layer("dense", 5, 2, seed=1), dtype=dtype)


def graph(dtype=np.float64):
    """Two inputs, fan-out, add, concat, and one dense layer called twice (shared)."""
    a, b = jitbp.Input(3), jitbp.Input(2)
    shared = jitbp.layer("dense", 3, 3, seed=2)
    h = shared(a)
    twice = shared(jitbp.layer("tanh")(h))
    joined = jitbp.layer("concat")(jitbp.layer("add")(h, twice), jitbp.layer("dense", 2, 4, bias=False, seed=3)(b))
    out = jitbp.layer("dense", 7, 2, seed=4)(jitbp.layer("sigmoid")(joined))
    return jitbp.Network([a, b], out, dtype=dtype)


def data(net, n=8, seed=0):
    rng = np.random.default_rng(seed)
    X = [rng.normal(size=(n,) + node.shape) for node in net.inputs]
    return (X[0] if len(X) == 1 else X), rng.normal(size=(n, 2))


def copies(net):
    return {key: value.copy() for key, value in net.params.items()}


def assert_bit_equal(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert a[key].tobytes() == b[key].tobytes(), key


@pytest.fixture
def saved(tmp_path):
    """A trained chain saved with its Adam state: (path, net, optimizer)."""
    net, opt = chain(), jitbp.Adam(lr=0.01)
    net.learn(*data(net), optimizer=opt, epochs=2, batch_size=3, seed=0)
    path = tmp_path / "model.jbp"
    net.save(path, optimizer=opt)
    return path, net, opt


# --- round trips -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("build", [chain, graph])
def test_round_trip_is_bit_exact(tmp_path, build, dtype):
    net = build(dtype)
    X, Y = data(net)
    net.learn(X, Y, optimizer=jitbp.SGD(0.1), epochs=2, batch_size=3, seed=0)
    net.save(tmp_path / "m")
    loaded = jitbp.load(tmp_path / "m")
    assert loaded.dtype is dtype
    assert_bit_equal(net.params, loaded.params)
    assert net.predict(X).tobytes() == loaded.predict(X).tobytes()
    assert [n.layer.kind for n in loaded.calls] == [n.layer.kind for n in net.calls]
    assert loaded.saved_optimizer is None


def test_shared_layer_stays_shared_after_load(tmp_path):
    net = graph()
    net.save(tmp_path / "m")
    loaded = jitbp.load(tmp_path / "m")
    assert len(loaded.shared_layers) == 1
    assert list(loaded.params) == list(net.params)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make_optimizer", OPTIMIZERS)
@pytest.mark.parametrize("build", [chain, graph])
def test_resuming_after_load_matches_uninterrupted_training(tmp_path, build, make_optimizer, dtype):
    straight, interrupted = build(dtype), build(dtype)
    X, Y = data(straight)
    opt_a, opt_b = make_optimizer(), make_optimizer()
    straight.learn(X, Y, optimizer=opt_a, epochs=2, batch_size=3, seed=0)
    straight.learn(X, Y, optimizer=opt_a, epochs=2, batch_size=3, seed=1)
    interrupted.learn(X, Y, optimizer=opt_b, epochs=2, batch_size=3, seed=0)
    interrupted.save(tmp_path / "m", optimizer=opt_b)
    resumed = jitbp.load(tmp_path / "m")
    assert type(resumed.saved_optimizer) is type(opt_b)
    assert resumed.saved_optimizer.settings() == opt_b.settings()
    resumed.learn(X, Y, optimizer=resumed.saved_optimizer, epochs=2, batch_size=3, seed=1)
    assert_bit_equal(straight.params, resumed.params)


def test_optimizer_state_round_trips_with_its_step_counts(saved):
    path, net, opt = saved
    loaded = jitbp.load(path)
    for key, value in loaded.params.items():
        slots, step = loaded.saved_optimizer.state_of(value)
        want_slots, want_step = opt.state_of(net.params[key])
        assert step == want_step == 6
        assert slots.tobytes() == want_slots.tobytes()


# --- the file itself ---------------------------------------------------------------

def test_save_writes_exactly_the_path_and_nothing_else(tmp_path):
    chain().save(tmp_path / "weights")  # no extension added
    assert os.listdir(tmp_path) == ["weights"]


def test_save_replaces_an_existing_model(tmp_path):
    path = tmp_path / "m"
    chain().save(path)
    other = jitbp.Sequential(jitbp.layer("dense", 3, 1, seed=9))
    other.save(path)
    assert_bit_equal(jitbp.load(path).params, other.params)
    assert os.listdir(tmp_path) == ["m"]


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m"
    chain().save(path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", broken)
    with pytest.raises(OSError, match="disk full"):
        chain().save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m"]


def test_file_holds_a_json_header_and_plain_npy_arrays_only(saved):
    path, net, _ = saved
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        header = json.loads(archive.read("header.json"))
        for name in names[1:]:
            assert name.endswith(".npy")
            with archive.open(name) as member:
                assert np.lib.format.read_array(member, allow_pickle=False).dtype == np.float64
    assert names[0] == "header.json"
    assert header["format"] == "jitbp-model" and header["version"] == 1 and header["dtype"] == "float64"
    assert [c["kind"] for c in header["calls"]] == ["dense", "tanh", "dense"]
    assert {c["plugin"] for c in header["calls"]} == {"jitbp.layers.dense", "jitbp.layers.activations"}
    assert all(c["plugin_version"] == jitbp.__version__ for c in header["calls"])
    assert header["optimizer"]["class"] == "Adam"
    assert sorted(n for n in names if n.startswith("param/")) == sorted(f"param/{k}.npy" for k in net.params)


def test_save_refuses_bad_arguments(tmp_path):
    net = chain()
    with pytest.raises(TypeError, match="optimizer must be a jitbp optimizer"):
        net.save(tmp_path / "m", optimizer="adam")
    with pytest.raises(IsADirectoryError):
        net.save(tmp_path)
    with pytest.raises(FileNotFoundError, match="directory"):
        net.save(tmp_path / "missing" / "m")
    assert os.listdir(tmp_path) == []


# --- damaged, foreign and newer files ----------------------------------------------

def rewrite(src, dst, header=None, drop=(), extra=None):
    """Copy the zip ``src`` to ``dst`` with header edited by ``header(dict)``, members dropped or added."""
    with zipfile.ZipFile(src) as archive, zipfile.ZipFile(dst, "w") as out:
        for name in archive.namelist():
            if name in drop:
                continue
            content = archive.read(name)
            if name == "header.json" and header is not None:
                content = json.dumps(header(json.loads(content)))
            out.writestr(name, content)
        for name, content in (extra or {}).items():
            out.writestr(name, content)
    return dst


def edited(key, value):
    def edit(header):
        header[key] = value
        return header
    return edit


def load_fails(path, match=None):
    with pytest.raises(jitbp.ModelFileError, match=match) as info:
        jitbp.load(path)
    assert isinstance(info.value, ValueError)
    return str(info.value)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
def test_truncated_file_is_refused(saved, tmp_path, fraction):
    path = saved[0]
    content = path.read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(content[:int(len(content) * fraction)])
    load_fails(cut)


def test_every_flipped_byte_is_refused_or_harmless(saved, tmp_path):
    """CRC-32 guards the arrays: a flip either fails cleanly or changes no parameter."""
    path, net, opt = saved
    content = bytearray(path.read_bytes())
    damaged = tmp_path / "damaged"
    refused = 0
    for offset in range(0, len(content), 7):
        flipped = content.copy()
        flipped[offset] ^= 0xFF
        damaged.write_bytes(bytes(flipped))
        try:
            loaded = jitbp.load(damaged)
        except jitbp.ModelFileError:
            refused += 1
            continue
        assert_bit_equal(net.params, loaded.params)
        for key, value in loaded.params.items():
            assert loaded.saved_optimizer.state_of(value)[0].tobytes() == opt.state_of(net.params[key])[0].tobytes()
    assert refused > len(content) // 7 // 2


@pytest.mark.parametrize("content", [b"", b"hello, I am a text file\n", b"PK\x03\x04" + bytes(100),
                                     bytes(range(256)) * 4])
def test_non_zip_files_are_refused(tmp_path, content):
    path = tmp_path / "foreign"
    path.write_bytes(content)
    load_fails(path, "not a readable jitbp model")


def test_npz_and_other_zips_are_refused(tmp_path):
    np.savez(tmp_path / "arrays.npz", W=np.ones((2, 2)))
    load_fails(tmp_path / "arrays.npz", "no header")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "not a model")
    load_fails(tmp_path / "other.zip", "no header")


@pytest.mark.parametrize("header, match", [
    (edited("format", "keras-model"), "wrong format tag"),
    (edited("version", 2), "newer than this jitbp reads .*upgrade jitbp"),
    (edited("version", "1"), "unsupported model format version"),
    (lambda h: [h], "wrong format tag"),
])
def test_wrong_tag_or_version_is_refused(saved, tmp_path, header, match):
    load_fails(rewrite(saved[0], tmp_path / "bad", header=header), match)


def test_corrupt_header_json_is_refused(saved, tmp_path):
    with zipfile.ZipFile(saved[0]) as archive, zipfile.ZipFile(tmp_path / "bad", "w") as out:
        for name in archive.namelist():
            out.writestr(name, b"{not json" if name == "header.json" else archive.read(name))
    load_fails(tmp_path / "bad", "corrupt model header")


def first_call(key, value):
    def edit(header):
        header["calls"][0][key] = value
        return header
    return edit


@pytest.mark.parametrize("header", [
    first_call("inputs", [7]),                      # no such node
    first_call("config", {"n_in": -1, "n_out": 5}),  # constructor refuses it
    first_call("config", {"width": 3}),             # unknown argument
    edited("dtype", "complex128"),
    edited("inputs", [[4]]),                        # dense expects 3 features
    edited("calls", "dense"),
    lambda h: {k: v for k, v in h.items() if k != "calls"},
    lambda h: dict(h, optimizer=dict(h["optimizer"], **{"class": "LBFGS"})),
    lambda h: dict(h, optimizer=dict(h["optimizer"], settings={"lr": -1.0})),
    first_call("inputs", [-1]),                     # would silently wire the last node
    lambda h: dict(h, optimizer=dict(h["optimizer"], steps={k: -3 for k in h["optimizer"]["steps"]})),
    lambda h: dict(h, optimizer=dict(h["optimizer"], steps={k: 2.5 for k in h["optimizer"]["steps"]})),
])
def test_malformed_header_is_refused(saved, tmp_path, header):
    load_fails(rewrite(saved[0], tmp_path / "bad", header=header))


def test_missing_or_mistyped_arrays_are_refused(saved, tmp_path):
    load_fails(rewrite(saved[0], tmp_path / "a", drop=("param/dense_0.W.npy",)), "param/dense_0.W is missing")
    load_fails(rewrite(saved[0], tmp_path / "b", drop=("optimizer/dense_1.b.npy",)), "optimizer/dense_1.b")
    as_float32 = rewrite(saved[0], tmp_path / "c", drop=("param/dense_1.b.npy",))
    with zipfile.ZipFile(as_float32, "a") as archive, archive.open("param/dense_1.b.npy", "w") as member:
        np.lib.format.write_array(member, np.zeros(2, np.float32))
    load_fails(as_float32, "wrong shape or dtype")


def test_pickled_object_array_is_refused_not_unpickled(saved, tmp_path):
    path = rewrite(saved[0], tmp_path / "bad", drop=("param/dense_0.b.npy",))
    with zipfile.ZipFile(path, "a") as archive, archive.open("param/dense_0.b.npy", "w") as member:
        np.lib.format.write_array(member, np.array([object()] * 5, dtype=object), allow_pickle=True)
    load_fails(path, "pickle")


class PluginDense(Dense):
    kind = "test_only_dense"


class TemporaryPlugin:
    @hookimpl
    def register_layers(self, register):
        register(PluginDense)


def test_model_whose_plugin_is_not_installed_is_refused(tmp_path):
    reg = registry()
    reg.register_plugin(TemporaryPlugin(), name="temporary-plugin", version="3.1.4")
    try:
        net = jitbp.Sequential(jitbp.layer("test_only_dense", 2, 2, seed=0))
        net.save(tmp_path / "m")
        assert_bit_equal(jitbp.load(tmp_path / "m").params, net.params)
    finally:
        reg.unregister_plugin("temporary-plugin")
    message = load_fails(tmp_path / "m", "not installed")
    assert "temporary-plugin" in message and "3.1.4" in message and "test_only_dense" in message


def test_missing_file_and_directory_are_plain_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        jitbp.load(tmp_path / "nothing")
    with pytest.raises(IsADirectoryError):
        jitbp.load(tmp_path)

