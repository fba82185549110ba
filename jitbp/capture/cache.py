"""The disk cache: generated modules stored under the hash of their text, compiled by Numba
with ``cache=True`` next to them, and the fingerprint of the kernel sources they link in.

The cache is an optimisation, never a point of failure: a generated file that does not
hold its text is rewritten, Numba's damaged index or data files are removed and the
epoch compiled again, and a directory that cannot be used is replaced by a private
temporary one for the process (then by the interpreted engine), each with one warning.
"""
import atexit
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import types
import uuid
import warnings

import numba
from numba._dispatcher import compute_fingerprint  # the dispatcher's own key of argument types
from numba.core import errors, event

CACHE_ENV = "JITBP_CACHE_DIR"
#: ``JITBP_QUIET=1`` silences the line printed before a captured epoch compiles.
QUIET_ENV = "JITBP_QUIET"
PREFIX = "jitbp_captured_"
FIX = f"Fix: make it a writable directory, point {CACHE_ENV} at one, or run `jitbp cache --clear`."

_ready = {}  # (text, function, argument types' fingerprint) -> the module compiled for them
_unusable = set()  # directories that failed in this process
_warned = set()
_private = None


class CacheWarning(UserWarning):
    """The captured-epoch cache was damaged or unusable; training went on without it."""


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



def cache_path():
    """The directory of captured epochs: ``$JITBP_CACHE_DIR/captured`` or the user's cache."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "jitbp")
    return os.path.join(root, "captured")


def module_name(text):
    return PREFIX + hashlib.sha256(text.encode()).hexdigest()[:20]


def describe(error):
    return f"{type(error).__name__}: {error}"


def cache_usage():
    """``(directory, captured epochs, bytes, damaged epochs)`` of the on-disk cache, compiled
    code included; ``OSError`` if the directory cannot be used."""
    path = cache_path()
    os.makedirs(path, exist_ok=True)
    names = [name for name in os.listdir(path) if name.endswith(".py")]
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{path} is not writable")
    damaged = sum(not _holds(os.path.join(path, name), name[:-3]) for name in names)
    size = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                size += os.path.getsize(os.path.join(folder, name))
            except OSError:  # removed meanwhile
                pass
    return path, len(names), size, damaged


def _holds(path, name):
    """Whether the generated file ``path`` holds the text whose hash names it (``OSError`` if
    it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return module_name(handle.read().decode()) == name
    except (FileNotFoundError, UnicodeDecodeError):
        return False


def clear_cache():
    """Delete every captured epoch on disk; each is written and compiled again when next used."""
    path = cache_path()
    if os.path.lexists(path):
        shutil.rmtree(path)


def compiled(text, function, args, wait=True):
    """The generated module of ``text`` with ``function`` compiled for ``args``, or ``None``
    when no cache directory works (the caller then runs the interpreted engine).

    Unless ``wait``, a function not yet in the on-disk cache is compiled there by another
    process (:mod:`.background`) and ``None`` is returned until it is ready."""
    key = (text, function, compute_fingerprint(args))  # ~1 us where typing the arguments takes ~1 ms
    module = _ready.get(key)
    if module is not None:
        return module
    name = module_name(text)
    signature = tuple(numba.typeof(arg) for arg in args)
    if not wait and not _compiles_elsewhere(name, text, function, signature):
        return None
    for directory, fallback in ((cache_path(), "a private temporary cache for this process"),
                                (None, "the interpreted engine")):
        try:
            directory = directory or _private_directory()
            if directory in _unusable:
                continue
            module = _ready[key] = _compile(directory, name, text, function, signature)
            return module
        except (errors.NumbaError, errors.UnsupportedBytecodeError):  # the graph itself does not compile
            raise
        except Exception as error:
            directory = directory or tempfile.gettempdir()
            _unusable.add(directory)
            _warn(directory, "unusable", f"jitbp: the captured-epoch cache {directory} cannot be used "
                                         f"({describe(error)}); training uses {fallback}. {FIX}")
    return None


def _compiles_elsewhere(name, text, function, signature):
    """``False`` while another process compiles ``function`` for ``signature`` (started here
    if need be) or after it failed; ``True`` once it is ready in the cache, or when no
    process can be started (then it is compiled here, as with ``wait``)."""
    from . import background  # it builds on this module

    directory = cache_path()
    if directory in _unusable:
        return True
    try:
        os.makedirs(directory, exist_ok=True)
        if background.ready(directory, name, signature):
            return True
        background.start(directory, name, text, function, signature)
    except OSError:
        return True
    return False


def _private_directory():
    """A directory of this process's own, removed when it exits."""
    global _private
    if _private is None:
        _private = tempfile.mkdtemp(prefix="jitbp-cache-")
        atexit.register(shutil.rmtree, _private, ignore_errors=True)
    return _private


def _compile(directory, name, text, function, signature):
    """Import the module from ``directory`` and compile ``function``; Numba cache files that
    fail to load are removed and the function compiled afresh."""
    os.makedirs(directory, exist_ok=True)
    module = sys.modules.get(name)
    if module is None or os.path.dirname(module.__file__) != directory:
        module = _import(directory, name, text)
    dispatcher = getattr(module, function)
    notice = _Notice(dispatcher, directory)
    try:
        with event.install_listener("numba:compile", notice):
            dispatcher.compile(signature)
    except Exception as error:
        if notice.started:  # failed compiling or saving, not loading
            raise
        for path in _numba_files(directory, name):
            os.remove(path)
        _warn(directory, "repaired", f"jitbp: removed damaged compiled code of a captured epoch in {directory} "
                                     f"({describe(error)}); it is compiled again.")
        with event.install_listener("numba:compile", notice):
            dispatcher.compile(signature)
    return module


def _import(directory, name, text):
    """Execute ``text`` as module ``name`` from its file in ``directory``, (re)writing the file
    unless it holds exactly ``text`` (it is named by its hash, so anything else is damage)."""
    path = os.path.join(directory, name + ".py")
    if not _holds(path, name):
        if os.path.lexists(path):
            _warn(directory, "repaired", f"jitbp: rewrote the damaged generated module {path}.")
        _write(path, text)
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module  # Numba's cached code finds the module's globals here
    try:
        exec(compile(text, path, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _write(path, text):
    """Write ``path`` atomically, with the mode ``open()`` gives (the umask's)."""
    tmp = f"{path}.{uuid.uuid4().hex[:16]}.tmp"
    try:
        with open(tmp, "xb") as handle:
            handle.write(text.encode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.remove(tmp)
        raise


def _numba_files(directory, name):
    """Numba's index and data files for the functions of module ``name`` (kept in-tree)."""
    folder = os.path.join(directory, "__pycache__")
    try:
        return [os.path.join(folder, entry) for entry in os.listdir(folder)
                if entry.startswith(name + ".") and entry.endswith((".nbi", ".nbc"))]
    except FileNotFoundError:
        return []


def _warn(directory, kind, message):
    if (directory, kind) not in _warned:
        _warned.add((directory, kind))
        warnings.warn(message, CacheWarning, stacklevel=2)


class _Notice(event.Listener):
    """Says once on stderr, unless ``JITBP_QUIET`` is set, that the epoch is being compiled."""

    def __init__(self, dispatcher, directory):
        self.dispatcher = dispatcher
        self.directory = directory
        self.started = False

    def on_start(self, event):
        if event.data["dispatcher"] is not self.dispatcher or self.started:
            return
        self.started = True
        if not os.environ.get(QUIET_ENV):
            print(f"jitbp: compiling the training loop for this network "
                  f"(first run only; cached in {self.directory})...", file=sys.stderr, flush=True)

    def on_end(self, event):
        pass
