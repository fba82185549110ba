"""The disk cache: generated modules stored under the hash of their text, compiled by Numba
with ``cache=True`` next to them, and the fingerprint of the kernel sources they link in."""
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile

CACHE_ENV = "JITBP_CACHE_DIR"


def source_fingerprint(packages):
    """A digest of the size and mtime of every source file of ``packages``.

    Numba links the kernels' machine code into the compiled epoch and only checks the
    generated file for staleness; the fingerprint goes into that file's text (and so
    its name), so upgrading jitbp or a plugin compiles a new epoch instead of running
    the old kernels.
    """
    digest = hashlib.sha256()
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec.submodule_search_locations is None:  # a single-file module
            paths = [spec.origin]
        else:
            paths = [os.path.join(folder, name) for root in spec.submodule_search_locations
                     for folder, _, files in sorted(os.walk(root)) for name in sorted(files)
                     if name.endswith(".py")]
        for path in paths:
            stat = os.stat(path)
            digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def cache_dir():
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "jitbp")
    path = os.path.join(root, "captured")
    os.makedirs(path, exist_ok=True)
    return path


def cache_usage():
    """``(directory, captured epochs, bytes)`` of the on-disk cache, compiled code included."""
    path = cache_dir()
    epochs = sum(name.endswith(".py") for name in os.listdir(path))
    size = sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(path) for name in names)
    return path, epochs, size


def clear_cache():
    """Delete every captured epoch on disk; each is written and compiled again when next used."""
    shutil.rmtree(cache_dir())


def load_module(text):
    """Import the generated module, writing it under its hash once."""
    name = "jitbp_captured_" + hashlib.sha256(text.encode()).hexdigest()[:20]
    if name in sys.modules:
        return sys.modules[name]
    directory = cache_dir()
    path = os.path.join(directory, name + ".py")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module
