"""Numba's cache of a package is dropped when a module its kernels call changed (kernel_stamp).

Each run is a new process on a temporary copy of a tiny plugin: kernel ``A`` in ``a.py``
calls ``B`` in ``b.py`` (or in another package), both ``cache=True``. Numba checks only
``a.py`` for ``A``, so after ``B`` changes a stale cache would still return the old result.
"""
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

from jitbp import kernel_stamp
from jitbp.capture.cache import CacheWarning, source_fingerprint

KERNEL = "from numba import njit\n\n\n@njit(cache=True)\ndef {name}(x):\n    return {body}\n"
PLUGIN = textwrap.dedent("""\
    from jitbp.hookspecs import hookimpl


    @hookimpl
    def register_layers(register):
        pass
    """)
# Through the plugin registry, as a user's process loads the plugin.
RUN_PLUGIN = "import jitbp.plugins; jitbp.plugins.registry(); from stalepkg.a import A; print(A(1.0))"
# A plugin kernel calling a kernel of another package, as a plugin calls jitbp.kernels.
RUN_DEPENDS = ("from jitbp import kernel_stamp; kernel_stamp.refresh('stalepkg', depends=('basepkg',)); "
               "from stalepkg.a import A; print(A(1.0))")


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_plugin(root, callee="b"):
    """``stalepkg``: ``A(x) = B(x) + 1``, ``B(x) = 2x``, with an entry point in group ``jitbp``."""
    write(root / "stalepkg" / "__init__.py", PLUGIN)
    write(root / "stalepkg" / "a.py", f"from {callee} import B\n" + KERNEL.format(name="A", body="B(x) + 1.0"))
    dist = root / "stalepkg-0.1.dist-info"
    write(dist / "METADATA", "Metadata-Version: 2.1\nName: stalepkg\nVersion: 0.1\n")
    write(dist / "entry_points.txt", "[jitbp]\nstale = stalepkg\n")


def run(root, code, env_extra):
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(root), HOME=str(root / "home"), **env_extra)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return float(done.stdout.split()[-1])


@pytest.fixture(params=["in-tree", "NUMBA_CACHE_DIR"])
def cache_env(request, tmp_path):
    return {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")} if request.param == "NUMBA_CACHE_DIR" else {}


def test_a_changed_callee_in_the_plugin_is_compiled_again(tmp_path, cache_env):
    make_plugin(tmp_path, callee="stalepkg.b")
    b = tmp_path / "stalepkg" / "b.py"
    write(b, KERNEL.format(name="B", body="2.0 * x"))
    assert run(tmp_path, RUN_PLUGIN, cache_env) == 3.0
    write(b, KERNEL.format(name="B", body="30.0 * x"))  # a.py untouched: Numba alone keeps A's old code
    assert run(tmp_path, RUN_PLUGIN, cache_env) == 31.0
    assert run(tmp_path, RUN_PLUGIN, cache_env) == 31.0  # and the fresh cache is kept


def test_a_changed_dependency_package_drops_the_plugin_cache(tmp_path, cache_env):
    make_plugin(tmp_path, callee="basepkg.kernels")
    write(tmp_path / "basepkg" / "__init__.py", "")
    kernels = tmp_path / "basepkg" / "kernels.py"
    write(kernels, KERNEL.format(name="B", body="2.0 * x"))
    assert run(tmp_path, RUN_DEPENDS, cache_env) == 3.0
    write(kernels, KERNEL.format(name="B", body="30.0 * x"))  # as upgrading jitbp under a plugin
    assert run(tmp_path, RUN_DEPENDS, cache_env) == 31.0


def test_the_registry_stamps_a_plugin_with_jitbp_sources(tmp_path):
    make_plugin(tmp_path, callee="stalepkg.b")
    write(tmp_path / "stalepkg" / "b.py", KERNEL.format(name="B", body="2.0 * x"))
    run(tmp_path, RUN_PLUGIN, {})
    sys.path.insert(0, str(tmp_path))
    try:
        expected = source_fingerprint(("stalepkg", "jitbp"))
    finally:
        sys.path.remove(str(tmp_path))
    assert (tmp_path / "stalepkg" / "__pycache__" / "stalepkg.kernel-stamp").read_text() == expected


def test_only_the_package_numba_files_are_removed(tmp_path, monkeypatch):
    write(tmp_path / "solo.py", "")
    cache = tmp_path / "__pycache__"
    keep = ["other.f-3.py313.nbi", "other.f-3.py313.0.nbc", "solo.cpython-313.pyc", "notes.txt"]
    drop = ["solo.f-3.py313.nbi", "solo.f-3.py313.0.nbc"]
    for name in keep + drop:
        write(cache / name, "x")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(kernel_stamp, "_done", set())
    kernel_stamp.refresh("solo")  # a single-file module shares its __pycache__ with others
    assert sorted(p.name for p in cache.iterdir()) == sorted(keep + ["solo.kernel-stamp"])


def test_a_cache_that_cannot_be_cleared_warns_with_the_fix(tmp_path, monkeypatch):
    write(tmp_path / "solo.py", "")
    write(tmp_path / "__pycache__" / "solo.f-3.py313.nbi", "x")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(kernel_stamp, "_done", set())
    monkeypatch.setattr(kernel_stamp.os, "unlink", _refuse)
    with pytest.warns(CacheWarning, match=r"delete its \*\.nbi and \*\.nbc files"):
        kernel_stamp.refresh("solo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel_stamp.refresh("solo")  # once per process


def _refuse(path):
    raise PermissionError(13, "Permission denied", path)
