"""Writing a file atomically: a temporary file next to it, synced, then renamed over it.

The temporary file is created like a plain ``open(path, "wb")`` would create it (mode
0666 less the umask) and is named ``.jitbp-<host>-<pid>-<random>.tmp``, so a later
write into the same directory can tell the leftovers of a writer killed mid-write
(SIGKILL, power loss) from a concurrent writer's file: only those of this host whose
process is gone are removed.
"""
import contextlib
import os
import re
import secrets
import socket

PREFIX = ".jitbp-"
SUFFIX = ".tmp"


@contextlib.contextmanager
def replacing(path):
    """A binary file object; on success it is synced and renamed over ``path``, else removed."""
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale(directory)
    tmp = os.path.join(directory, f"{PREFIX}{_host()}-{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale(directory):
    """Remove this host's temporary files in ``directory`` whose writing process has ended."""
    pattern = re.compile(rf"{re.escape(PREFIX + _host())}-(\d+)-[0-9a-f]+{re.escape(SUFFIX)}")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or an unsignalable pid): leave its file
    return True


def _host():
    """The host name, reduced to characters safe in a file name."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())
