"""Finding ``mpiexec`` for the MPI library mpi4py runs on (tests, benchmarks, scripts)."""
import os
import shutil
import sys
from importlib import metadata


def find_mpiexec():
    """The path of ``mpiexec``, or ``None``: the mpich wheel's own launcher first (it matches
    the library mpi4py loads), then the interpreter's bin folder, then ``PATH``."""
    try:
        files = metadata.distribution("mpich").files or ()
        for entry in files:
            if entry.name == "mpiexec" and entry.parent.name == "bin":
                path = os.path.abspath(entry.locate())
                if os.access(path, os.X_OK):
                    return path
    except metadata.PackageNotFoundError:
        pass
    for folder in (os.path.dirname(sys.executable), os.path.join(sys.base_prefix, "bin")):
        path = shutil.which("mpiexec", path=folder)
        if path:
            return path
    return shutil.which("mpiexec")
