"""Dropping Numba's cached kernels of a package when any source they may embed changed.

Numba checks a ``cache=True`` kernel only against its own file, yet the kernel holds the
compiled code of the functions it calls in other modules. So next to each of the
package's Numba cache directories we keep a stamp: ``source_fingerprint`` of the package
(and of jitbp, for a plugin). When it differs, the package's ``*.nbi``/``*.nbc`` files in
that directory are removed before any kernel loads, and the new stamp is written.
"""
import contextlib
import importlib.util
import os
import warnings

from numba.core import config
from numba.core.caching import _CacheLocator
from numba.misc.appdirs import AppDirs

from .atomic_file import replacing
from .capture.cache import CacheWarning, source_fingerprint

_done = set()


def refresh(package, depends=()):
    """Remove ``package``'s Numba cache files if it or ``depends`` changed since they were written.

    Runs once per package and process; an unusable cache directory warns once."""
    if package in _done:
        return
    _done.add(package)
    source_dirs = _source_dirs(package)
    if not source_dirs:  # not found: the import that follows says so
        return
    stamp_name = f"{package}.kernel-stamp"
    fingerprint = source_fingerprint((package, *depends))
    for source_dir, stems in source_dirs.items():
        for cache_dir in _cache_dirs(source_dir):
            try:
                if _read(os.path.join(cache_dir, stamp_name)) != fingerprint:
                    _remove(cache_dir, stems)
                    with replacing(os.path.join(cache_dir, stamp_name)) as handle:
                        handle.write(fingerprint.encode())
            except OSError as error:
                warnings.warn(f"Numba's cache of {package} in {cache_dir} may hold kernels compiled from older "
                              f"sources and could not be cleared ({error}); delete its *.nbi and *.nbc files, "
                              f"or set NUMBA_CACHE_DIR to a writable directory", CacheWarning, stacklevel=3)
                return


def _source_dirs(package):
    """``{directory: module names}`` of the package's ``.py`` files (a module: its own file)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return {}
    if spec is None or spec.origin is None and spec.submodule_search_locations is None:
        return {}
    roots = spec.submodule_search_locations
    if roots is None:
        return {os.path.dirname(spec.origin): {os.path.splitext(os.path.basename(spec.origin))[0]}}
    found = {}
    for root in roots:
        for folder, _, files in os.walk(root):
            stems = {name[:-3] for name in files if name.endswith(".py")}
            if stems and os.path.basename(folder) != "__pycache__":
                found[folder] = stems
    return found


def _cache_dirs(source_dir):
    """The directories where Numba may cache kernels of ``source_dir``, as its locators pick them.

    Numba skips a directory it cannot write, so only writable ones are checked; the one it
    would use now is created, so that it gets a stamp before it gets kernels."""
    subpath = _CacheLocator.get_suitable_cache_subpath(os.path.join(source_dir, "x.py"))
    candidates = [os.path.join(config.CACHE_DIR, subpath)] if config.CACHE_DIR else []
    candidates += [os.path.join(source_dir, "__pycache__"),
                   os.path.join(AppDirs(appname="numba", appauthor=False).user_cache_dir, subpath)]
    found, chosen = [], False
    for path in candidates:
        if os.path.isdir(path):
            if os.access(path, os.W_OK):
                found.append(path)
                chosen = True
        elif not chosen:
            with contextlib.suppress(OSError):
                os.makedirs(path)
                found.append(path)
                chosen = True
    return found


def _read(path):
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _remove(cache_dir, stems):
    """Delete the Numba index and data files of modules ``stems`` in ``cache_dir``."""
    for name in os.listdir(cache_dir):
        if name.endswith((".nbi", ".nbc")) and name.split(".", 1)[0] in stems:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(cache_dir, name))
