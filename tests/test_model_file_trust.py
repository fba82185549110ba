"""Model files under attack or accident: bounded memory, one exception class, save and load agree."""
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import jitbp
from jitbp import atomic_file
from jitbp.layers.dense import Dense

from test_model_files import saved  # noqa: F401 (a fixture, shared)
from test_model_files import assert_bit_equal, chain, data, edited, first_call, load_fails, rewrite

MiB = 2**20


def peak_bytes(action):
    """The peak of traced memory (numpy's arrays included) while ``action()`` runs."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def load_peak(path):
    """(peak bytes, exception or None) of loading ``path``."""
    outcome = []

    def attempt():
        try:
            jitbp.load(path)
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 -- the test inspects it
            outcome.append(exc)

    return peak_bytes(attempt), outcome[0]


def npy(shape, payload=b"", dtype="<f8"):
    """A .npy member declaring ``shape`` but holding only ``payload`` after its header."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": shape})
    return out.getvalue() + payload


# --- bounded memory ----------------------------------------------------------------

def test_members_the_header_does_not_name_are_never_read(saved, tmp_path):
    baseline, _ = load_peak(saved[0])
    junk = np.zeros(8 * MiB // 8).tobytes()
    padded = rewrite(saved[0], tmp_path / "padded", extra={
        "junk.npy": npy((len(junk) // 8,), junk), "param/dense_7.W.npy": npy((len(junk) // 8,), junk)})
    peak, error = load_peak(padded)
    assert error is None
    assert peak < baseline + MiB, f"loading read unnamed members: peak {peak / MiB:.1f} MiB"


@pytest.mark.parametrize("config, drop", [
    ({"n_in": 3, "n_out": 2_000_000}, ()),                        # 48 MB of W declared, 120 bytes stored
    ({"n_in": 3, "n_out": 2_000_000}, ("param/dense_0.W.npy",)),  # ... and W missing altogether
    ({"n_in": 100_000, "n_out": 100_000}, ()),                    # 80 GB: MemoryError before
])
def test_layer_config_larger_than_its_arrays_allocates_nothing(saved, tmp_path, config, drop):
    bad = rewrite(saved[0], tmp_path / "bad", header=first_call("config", dict(config, bias=True)), drop=drop)
    peak, error = load_peak(bad)
    assert isinstance(error, jitbp.ModelFileError), repr(error)
    assert "dense_0" in str(error)
    assert peak < MiB, f"{peak / MiB:.1f} MiB allocated before refusing"


@pytest.mark.parametrize("shape", [(10**6, 10**6), (2_000_000,), (5, 3, 10**6)])
def test_npy_header_declaring_more_than_the_member_holds_allocates_nothing(saved, tmp_path, shape):
    bad = rewrite(saved[0], tmp_path / "bad", drop=("param/dense_0.W.npy",),
                  extra={"param/dense_0.W.npy": npy(shape, bytes(120))})
    peak, error = load_peak(bad)
    assert isinstance(error, jitbp.ModelFileError), repr(error)
    assert "param/dense_0.W" in str(error) and "declares shape" in str(error)
    assert peak < MiB


def test_zip_entry_claiming_more_than_the_file_is_refused(saved, tmp_path):
    content = bytearray(saved[0].read_bytes())
    entry = content.rindex(b"param/dense_0.W.npy") - 46  # its central-directory record
    assert content[entry:entry + 4] == b"PK\x01\x02"
    content[entry + 20:entry + 28] = (2**31).to_bytes(4, "little") * 2  # compressed and plain sizes
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(content))
    peak, error = load_peak(bad)
    assert isinstance(error, jitbp.ModelFileError), repr(error)
    assert peak < MiB


# --- one exception class -----------------------------------------------------------

def deep(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("header", [
    edited("optimizer", "adam"),
    edited("optimizer", {"class": "Adam", "settings": [], "steps": {}}),
    edited("optimizer", {"class": "Adam", "settings": {}, "steps": []}),
    edited("optimizer", {"class": "Adam", "settings": {"betas": 5}, "steps": {}}),
    edited("optimizer", {"class": "Adam", "settings": {}, "steps": {"dense_0.W": True}}),
    edited("optimizer", {"class": "Adam", "settings": {}, "steps": {"dense_0.W": 2**64}}),
    edited("optimizer", {"class": "Adam", "settings": {}, "steps": {"nowhere.W": 1}}),
    edited("optimizer", {"class": ["Adam"], "settings": {}, "steps": {}}),
    edited("calls", [1, 2]),
    edited("calls", []),
    edited("inputs", [[0]]),
    edited("inputs", [["3"]]),
    edited("inputs", 3),
    edited("dtype", ["float64"]),
    first_call("config", []),
    first_call("config", {"n_in": [[[[3]]]], "n_out": 5}),
    first_call("layer", 7),
    first_call("layer", "a.b"),
    first_call("kind", None),
    first_call("plugin", 3),
    first_call("inputs", "0"),
    first_call("inputs", [True]),
    lambda h: {k: v for k, v in h.items() if k != "inputs"},
])
def test_every_malformed_header_raises_model_file_error(saved, tmp_path, header):
    load_fails(rewrite(saved[0], tmp_path / "bad", header=header))


@pytest.mark.parametrize("text", [
    pytest.param(deep(100_000), id="nested-100000"),
    pytest.param('{"format": "jitbp-model", "version": 1, "x": ' + deep(50_000) + "}", id="nested-field"),
    pytest.param('{"format": "jitbp-model", "version": 1, "inputs": 1e999999}', id="infinite-float"),
    pytest.param('{"format": "jitbp-model", "version": 1, "inputs": ' + "9" * 5000 + "}", id="5000-digit-int"),
])
def test_pathological_json_raises_model_file_error(saved, tmp_path, text):
    bad = rewrite(saved[0], tmp_path / "bad", header=None, drop=("header.json",), extra={"header.json": text})
    load_fails(bad)


def test_oversized_header_member_is_not_read(saved, tmp_path):
    bad = rewrite(saved[0], tmp_path / "bad", drop=("header.json",), extra={"header.json": b" " * (17 * MiB)})
    peak, error = load_peak(bad)
    assert isinstance(error, jitbp.ModelFileError) and "header" in str(error)
    assert peak < MiB


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8)


def header_paths(value, path=()):
    """Every path to a value inside the JSON ``value``."""
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from header_paths(inner, path + (key,))


def must_refuse_or_load(path):
    try:
        jitbp.load(path)
    except jitbp.ModelFileError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choice=st.integers(0, 10**6), value=JSON)
def test_any_header_mutation_gives_model_file_error_or_loads(saved, tmp_path, choice, value):
    """Replace one value anywhere in a valid header by random JSON: ModelFileError or a model."""
    original = json.loads(zipfile.ZipFile(saved[0]).read("header.json"))
    paths = list(header_paths(original))[1:]
    target = paths[choice % len(paths)]

    def mutate(header):
        inner = header
        for key in target[:-1]:
            inner = inner[key]
        inner[target[-1]] = value
        return header

    must_refuse_or_load(rewrite(saved[0], tmp_path / "mutated", header=mutate))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255), st.sampled_from("sid")),
                      min_size=1, max_size=4))
def test_any_byte_mutation_gives_model_file_error_or_loads(saved, tmp_path, edits):
    """Overwrite, insert or delete bytes anywhere: ModelFileError or a model, nothing else."""
    content = bytearray(saved[0].read_bytes())
    for where, byte, kind in edits:
        at = int(where * len(content))
        if kind == "s":
            content[at] = byte
        elif kind == "i":
            content.insert(at, byte)
        else:
            del content[at]
    mutated = tmp_path / "mutated"
    mutated.write_bytes(bytes(content))
    must_refuse_or_load(mutated)


# --- what save accepts, load accepts -----------------------------------------------

def test_optimizer_state_at_step_zero_saves_and_loads(tmp_path):
    net, opt = chain(), jitbp.Adam(lr=0.01)
    for value in net.params.values():
        opt.set_state(value, np.full((2, value.size), 0.5), 0)
    net.save(tmp_path / "m", optimizer=opt)
    loaded = jitbp.load(tmp_path / "m")
    assert [loaded.saved_optimizer.state_of(v)[1] for v in loaded.params.values()] == [0] * len(net.params)


OPTIMIZER_SETTINGS = st.one_of(
    st.builds(lambda lr, m, wd: jitbp.SGD(lr, momentum=m, weight_decay=wd),
              st.floats(0, 10), st.sampled_from([0.0, 0.5, 0.9]), st.floats(0, 1)),
    st.builds(lambda lr, b1, b2, eps: jitbp.Adam(lr, betas=(b1, b2), eps=eps),
              st.floats(0, 10), st.floats(0, 0.999), st.floats(0, 0.9999), st.floats(0, 1)),
    st.builds(lambda lr, alpha: jitbp.RMSprop(lr, alpha=alpha), st.floats(0, 10), st.floats(0, 1)),
    st.builds(lambda lr, decay: jitbp.Adagrad(lr, lr_decay=decay), st.floats(0, 10), st.floats(0, 1)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opt=OPTIMIZER_SETTINGS, steps=st.lists(st.none() | st.integers(0, 2**63 - 1), min_size=4, max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]), fill=st.floats(width=32))
def test_every_optimizer_state_save_accepts_loads_bit_exact(tmp_path, opt, steps, dtype, fill):
    net = chain(dtype)
    for value, step in zip(net.params.values(), steps):
        if step is not None:
            opt.set_state(value, np.full((opt.n_slots, value.size), fill), step)
    net.save(tmp_path / "m", optimizer=opt)
    loaded = jitbp.load(tmp_path / "m")
    assert_bit_equal(net.params, loaded.params)
    assert loaded.saved_optimizer.settings() == opt.settings()
    for key, value in loaded.params.items():
        want, got = opt.state_of(net.params[key]), loaded.saved_optimizer.state_of(value)
        assert (want is None) == (got is None)
        if want is not None:
            assert got[1] == want[1] and got[0].tobytes() == want[0].tobytes()


def test_optimizer_changed_after_construction_is_refused_by_save_not_by_load(tmp_path):
    net, opt = chain(), jitbp.SGD(0.1, momentum=0.9)
    net.learn(*data(net), optimizer=opt, epochs=1, batch_size=4)
    with pytest.raises(ValueError):  # the assignment itself, or save, refuses it
        opt.lr = -1.0
        net.save(tmp_path / "m", optimizer=opt)
    opt.lr = 0.1
    opt.momentum = 0.0  # one momentum slot kept, none rebuilt
    with pytest.raises(ValueError, match="would not load|switched off"):
        net.save(tmp_path / "m", optimizer=opt)
    assert os.listdir(tmp_path) == []


class Unregistered(Dense):
    """A dense subclass never registered: load would rebuild a plain dense layer."""


def test_layer_load_cannot_rebuild_is_refused_by_save(tmp_path):
    net = jitbp.Sequential(Unregistered(3, 2, seed=0))
    with pytest.raises(ValueError, match="registered"):
        net.save(tmp_path / "m")
    assert os.listdir(tmp_path) == []


# --- the file on disk --------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_file_mode_follows_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        chain().save(tmp_path / "m")
        with open(tmp_path / "plain", "wb"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o666 & ~umask


SLOW_SAVE = textwrap.dedent("""
    import sys, time
    import numpy as np
    import jitbp
    write = np.lib.format.write_array
    def slow(*args, **kwargs):
        write(*args, **kwargs)
        print("writing", flush=True)
        time.sleep(60)
    np.lib.format.write_array = slow
    jitbp.Sequential(jitbp.layer("dense", 3, 2, seed=0)).save(sys.argv[1])
""")


def temporaries(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith(atomic_file.PREFIX))


def test_temporary_of_a_save_killed_by_sigkill_is_removed_by_the_next_save(tmp_path):
    env = dict(os.environ, JITBP_CAPTURE="never")
    child = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(tmp_path / "m")], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline() == b"writing\n"
        assert len(temporaries(tmp_path)) == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not (tmp_path / "m").exists() and len(temporaries(tmp_path)) == 1
    chain().save(tmp_path / "other")
    assert os.listdir(tmp_path) == ["other"]


def test_next_save_keeps_temporaries_of_live_writers_and_other_hosts(tmp_path):
    host = atomic_file._host()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        names = {
            "live": f".jitbp-{host}-{live.pid}-00aa11bb.tmp",
            "mine": f".jitbp-{host}-{os.getpid()}-00aa11bb.tmp",
            "other_host": f".jitbp-{host}x-{dead.pid}-00aa11bb.tmp",
            "foreign": f".jitbp-{host}-{dead.pid}-notmine.tmp",
            "dead": f".jitbp-{host}-{dead.pid}-00aa11bb.tmp",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"partial")
        chain().save(tmp_path / "m")
    finally:
        live.kill()
        live.wait()
    assert set(os.listdir(tmp_path)) == {"m"} | set(names.values()) - {names["dead"]}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.text(min_size=1, max_size=8).filter(lambda n: "." not in n), min_size=2, max_size=2,
                      unique=True))
def test_any_layer_names_save_accepts_load_accepts(tmp_path, names):
    net = jitbp.Sequential(jitbp.layer("dense", 3, 2, seed=0, name=names[0]),
                           jitbp.layer("tanh", name=names[1]))
    try:
        net.save(tmp_path / "m")
    except ValueError:
        return  # refused by save, with the reason: nothing was written
    loaded = jitbp.load(tmp_path / "m")
    assert list(loaded.layer_names.values()) == names
    assert_bit_equal(net.params, loaded.params)
