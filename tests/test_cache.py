"""The captured-epoch cache is an optimisation, never a point of failure.

Each damaged, unusable or foreign cache below still trains to the numbers of a healthy
run, bit for bit, with one warning naming the path. Running as root, permissions are
not enforced, so denied access is simulated by refusing the calls that would touch
the directory.
"""
import builtins
import errno
import io
import os
import shutil
import stat
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import jitbp
from jitbp.capture import cache
from jitbp.capture.cache import PREFIX, CacheWarning


def train(captured=True):
    net = jitbp.Sequential(jitbp.layer("dense", 5, 4, seed=0), jitbp.layer("tanh"), jitbp.layer("dense", 4, 2, seed=1))
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(12, 5)), rng.normal(size=(12, 2))
    history = net.learn(X, Y, "mse", jitbp.SGD(lr=0.05, momentum=0.9), epochs=3, batch_size=3, seed=1)
    epoch = net.engine._captured.get("mse")
    assert (epoch is not None and epoch.module is not None) == captured  # whether the compiled path ran
    return history, {key: value.copy() for key, value in net.params.items()}


def forget_captured_modules():
    """As a new process would start: nothing imported, compiled or found unusable yet."""
    for name in [name for name in sys.modules if name.startswith(PREFIX)]:
        del sys.modules[name]
    cache._ready.clear()
    cache._unusable.clear()
    cache._warned.clear()


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "always")
    forget_captured_modules()
    yield
    forget_captured_modules()


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """A filled cache and the numbers trained with it."""
    root = tmp_path_factory.mktemp("healthy")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JITBP_CAPTURE", "always")
        patch.setenv("JITBP_CACHE_DIR", str(root))
        forget_captured_modules()
        result = train()
    return root / "captured", result


def assert_same(result, expected):
    history, params = result
    assert history == expected[0]
    for key, value in expected[1].items():
        np.testing.assert_array_equal(params[key], value, err_msg=key)


def copied_cache(healthy, tmp_path, monkeypatch):
    """A copy of the healthy cache (mtimes kept, so Numba's index stays fresh) in use."""
    shutil.copytree(healthy[0], tmp_path / "captured")
    monkeypatch.setenv("JITBP_CACHE_DIR", str(tmp_path))
    return tmp_path / "captured"


def test_a_healthy_copy_is_used_without_compiling_or_warning(healthy, tmp_path, monkeypatch, recwarn, capsys):
    copied_cache(healthy, tmp_path, monkeypatch)
    assert_same(train(), healthy[1])
    assert not [w for w in recwarn if w.category is CacheWarning]
    assert "compiling" not in capsys.readouterr().err


@pytest.mark.parametrize("damage", [lambda text: "", lambda text: text[:len(text) // 2]], ids=["empty", "truncated"])
def test_a_damaged_generated_module_is_rewritten(healthy, tmp_path, monkeypatch, damage):
    folder = copied_cache(healthy, tmp_path, monkeypatch)
    (module,) = folder.glob("*.py")
    text = module.read_text()
    module.write_text(damage(text))
    with pytest.warns(CacheWarning, match="rewrote the damaged generated module"):
        assert_same(train(), healthy[1])
    assert module.read_text() == text


@pytest.mark.parametrize("suffix", [".nbi", ".nbc"], ids=["index", "data"])
def test_damaged_numba_files_are_removed_and_compiled_again(healthy, tmp_path, monkeypatch, suffix):
    folder = copied_cache(healthy, tmp_path, monkeypatch)
    (damaged,) = (folder / "__pycache__").glob(f"*.epoch-*{suffix}")
    damaged.write_bytes(b"\x80\x05not a pickle")
    with pytest.warns(CacheWarning, match=f"removed damaged compiled code .* in {folder}"):
        assert_same(train(), healthy[1])
    forget_captured_modules()  # the next process finds a repaired cache
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert_same(train(), healthy[1])


def refuse(monkeypatch, folder, error, writes_only=False):
    """Make every open, listing and creation under ``folder`` fail with ``error``."""
    folder = os.fspath(folder)

    def under(path):
        return isinstance(path, (str, bytes, os.PathLike)) and os.fspath(path).startswith(folder)

    def guard(real, writes):
        def call(path, *args, **kwargs):
            if under(path) and (not writes_only or writes(args, kwargs)):
                raise OSError(error, os.strerror(error), os.fspath(path))
            return real(path, *args, **kwargs)
        return call

    mode_writes = lambda args, kwargs: any(c in (args[0] if args else kwargs.get("mode", "r")) for c in "wxa+")
    monkeypatch.setattr(builtins, "open", guard(builtins.open, mode_writes))
    monkeypatch.setattr(io, "open_code", guard(io.open_code, lambda args, kwargs: False))
    flag_writes = lambda args, kwargs: bool(args[0] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    monkeypatch.setattr(os, "open", guard(os.open, flag_writes))
    for name in ("mkdir", "listdir"):
        monkeypatch.setattr(os, name, guard(getattr(os, name), lambda args, kwargs: name == "mkdir"))


def unusable_cache(case, healthy, tmp_path, monkeypatch):
    """Point JITBP_CACHE_DIR at a cache that cannot be used; returns the path warned about."""
    if case == "a regular file":
        (tmp_path / "captured").write_text("not a directory")
    elif case == "under a regular file":
        (tmp_path / "file").write_text("")
        tmp_path = tmp_path / "file"
    elif case == "read-only":
        (tmp_path / "captured").mkdir()
        refuse(monkeypatch, tmp_path, errno.EROFS, writes_only=True)
    elif case == "unreachable":
        refuse(monkeypatch, tmp_path, errno.ENOTCONN)
    elif case == "another user's 0600 files":
        copied_cache(healthy, tmp_path, monkeypatch)
        refuse(monkeypatch, tmp_path, errno.EACCES)
    monkeypatch.setenv("JITBP_CACHE_DIR", str(tmp_path))
    return os.path.join(tmp_path, "captured")


@pytest.mark.parametrize("case", ["a regular file", "under a regular file", "read-only", "unreachable",
                                  "another user's 0600 files"])
def test_an_unusable_cache_falls_back_to_a_private_one(healthy, tmp_path, monkeypatch, case):
    path = unusable_cache(case, healthy, tmp_path, monkeypatch)
    with pytest.warns(CacheWarning, match=f"cache {path} cannot be used .*private temporary cache.*Fix:") as caught:
        assert_same(train(), healthy[1])
        assert_same(train(), healthy[1])  # warned once
    assert len([w for w in caught if w.category is CacheWarning]) == 1


def test_with_no_usable_directory_training_runs_interpreted(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("JITBP_CACHE_DIR", str(tmp_path / "file"))
    monkeypatch.setattr(cache, "_private", str(tmp_path / "file" / "private"))
    with pytest.warns(CacheWarning) as caught:
        result = train(captured=False)
    assert [str(w.message).split("training uses ")[1][:20] for w in caught] == [
        "a private temporary ", "the interpreted engi"]
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    assert_same(result, train(captured=False))


def test_a_first_compile_says_so_once_and_files_respect_the_umask(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JITBP_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("JITBP_QUIET", raising=False)
    old = os.umask(0o022)
    try:
        train()
    finally:
        os.umask(old)
    folder = tmp_path / "captured"
    notices = [line for line in capsys.readouterr().err.splitlines() if line.startswith("jitbp: compiling")]
    assert notices == [f"jitbp: compiling the training loop for this network (first run only; cached in {folder})..."]
    files = list(folder.glob("*.py")) + list((folder / "__pycache__").iterdir())
    assert files and all(stat.S_IMODE(path.stat().st_mode) == 0o644 for path in files)


@pytest.mark.parametrize("quiet, said", [("", True), ("1", False)])
def test_the_compile_notice_is_silenced_by_jitbp_quiet(monkeypatch, capsys, quiet, said):
    monkeypatch.setenv("JITBP_QUIET", quiet)
    dispatcher = object()
    cache._Notice(dispatcher, "/some/cache").on_start(SimpleNamespace(data={"dispatcher": dispatcher}))
    assert ("jitbp: compiling" in capsys.readouterr().err) == said


@pytest.mark.parametrize("case", ["a regular file", "under a regular file"])
def test_cache_command_reports_an_unusable_cache_without_a_traceback(tmp_path, monkeypatch, capsys, case, healthy):
    from jitbp.cli import main

    path = unusable_cache(case, healthy, tmp_path, monkeypatch)
    assert main(["cache"]) == 1
    assert main(["cache", "--clear"]) == 1
    err = capsys.readouterr().err
    assert f"{path}: cannot be used (" in err and "Fix:" in err and "Traceback" not in err


def test_cache_command_reports_damaged_modules(healthy, tmp_path, monkeypatch, capsys):
    from jitbp.cli import main

    folder = copied_cache(healthy, tmp_path, monkeypatch)
    next(folder.glob("*.py")).write_text("")
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "1 captured epoch(s)" in out and "1 damaged, rewritten when next used" in out
