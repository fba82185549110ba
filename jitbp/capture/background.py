"""Compiling a captured epoch in another process while training goes on interpreted.

The parent writes the generated module and the argument types into the cache directory
and starts ``python -c`` on :func:`main`, which compiles the epoch into Numba's on-disk
cache and then renames a ``.ready`` marker into place. Until the marker exists the
caller trains on the interpreted engine; after it, loading the compiled epoch takes well
under a second. One lock file per epoch and argument types keeps concurrent processes
from compiling the same epoch twice; a compile that fails is reported once and the run
stays interpreted. The child outlives a parent that exits (it only fills the cache), in
its own session so a Ctrl-C meant for the parent does not reach it.
"""
import hashlib
import os
import pickle
import subprocess
import sys
import warnings

from . import cache

_jobs = {}  # (text, types) -> subprocess.Popen started here
_failed = set()


def types_key(signature):
    return hashlib.sha256(str(signature).encode()).hexdigest()[:16]


def paths(directory, name, key):
    """``(types file, lock, ready marker, log)`` of ``name`` compiled for the types of ``key``."""
    stem = os.path.join(directory, f"{name}.{key}")
    return stem + ".types", stem + ".lock", stem + ".ready", stem + ".log"


def ready(directory, name, signature):
    """Whether a compile of ``name`` for ``signature`` has finished into ``directory``."""
    return os.path.exists(paths(directory, name, types_key(signature))[2])


def start(directory, name, text, function, signature):
    """Start compiling unless this or another live process already does; ``False`` once
    a compile started here has failed (warned about once)."""
    types_of = types_key(signature)
    types, lock, marker, log = paths(directory, name, types_of)
    key = (text, str(signature))
    if key in _failed:
        return False
    job = _jobs.get(key)
    if job is not None:
        if job.poll() is None or job.returncode == 0:
            return True
        _failed.add(key)
        warnings.warn(f"jitbp: compiling the captured epoch in the background failed ({_last_line(log)}; "
                      f"log: {log}); training stays on the interpreted engine.", cache.CacheWarning, stacklevel=3)
        return False
    if _locked_by_live_process(lock):
        return True
    cache._import(directory, name, text)  # writes the module file the child imports
    cache._write(types, pickle.dumps(signature).hex())
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # another process took it between the check and here
        return True
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))  # this process holds it until the child is known
    code = (f"from jitbp.capture.background import main; "
            f"main({directory!r}, {name!r}, {function!r}, {types_of!r})")
    try:
        with open(log, "wb") as out:
            _jobs[key] = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=out, start_new_session=True,
                                          env=dict(os.environ, **{cache.QUIET_ENV: "1"}))
        cache._write(lock, str(_jobs[key].pid))
    except BaseException:
        os.remove(lock)
        raise
    if not os.environ.get(cache.QUIET_ENV):
        print(f"jitbp: compiling the training loop for this network in the background (first run only; cached "
              f"in {directory}); training runs meanwhile and switches to it at an epoch boundary.",
              file=sys.stderr, flush=True)
    return True


def _locked_by_live_process(lock):
    """Whether ``lock`` names a running process; a stale lock is removed."""
    try:
        with open(lock) as handle:
            pid = int(handle.read() or 0)
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        pid = 0
    if pid:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            pass
        except PermissionError:  # alive, another user's
            return True
    try:
        os.remove(lock)
    except FileNotFoundError:
        pass
    return False


def _last_line(log):
    try:
        with open(log, errors="replace") as handle:
            lines = [line.strip() for line in handle if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"


def main(directory, name, function, key):
    """The child: compile ``function`` of module ``name`` for the pickled types of ``key``,
    then mark it ready."""
    types, lock, marker, _ = paths(directory, name, key)
    try:
        with open(types) as handle:
            signature = pickle.loads(bytes.fromhex(handle.read()))
        with open(os.path.join(directory, name + ".py")) as handle:
            module = cache._import(directory, name, handle.read())
        getattr(module, function).compile(signature)
        cache._write(marker, "")
    finally:
        try:
            os.remove(lock)
        except FileNotFoundError:
            pass
