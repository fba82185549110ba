"""MPI through mpi4py, imported on first use, with a deadline on every collective.

MPI collectives block forever when a rank never joins (it died, hangs, or left
``learn`` on an error of its own). Each collective here is started non-blocking and
polled until a deadline, so a missing rank becomes a :class:`DistributedError` on
the ranks still waiting instead of a hang. A rank that is killed outright is
handled by ``mpiexec`` itself, which then stops the whole job.
"""
import time

import numpy as np

#: Seconds a waiting rank polls without sleeping (answers within a step are this fast).
SPIN_SECONDS = 0.01
#: Pause between polls after that, so a waiting rank leaves the cores to the others.
POLL_PAUSE = 0.001


class DistributedError(RuntimeError):
    """The ranks disagree (data, network, settings) or one of them stopped answering."""


def mpi():
    """The ``mpi4py.MPI`` module (initialises MPI), or an ImportError saying what to install."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("jitbp.distributed needs mpi4py and an MPI library: pip install 'jitbp[mpi]'") from None
    return MPI


class Communicator:
    """A communicator's rank, size and the few timed collectives data parallelism needs."""

    def __init__(self, comm=None, timeout=300.0):
        MPI = mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout = float(timeout)

    def start_allreduce(self, buffer, op="sum"):
        """Begin summing (or taking the minimum of) ``buffer`` over the ranks, in place."""
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, {"sum": self.MPI.SUM, "min": self.MPI.MIN}[op])

    def progress(self, requests):
        """Let MPI advance ``requests`` without waiting (MPICH progresses only inside MPI calls)."""
        if requests:
            self.MPI.Request.Testall(requests)

    def wait(self, requests, doing):
        """Wait for ``requests``; a DistributedError if the other ranks do not answer in time."""
        start = time.monotonic()
        while not self.MPI.Request.Testall(requests):
            waited = time.monotonic() - start
            if waited > self.timeout:
                raise DistributedError(
                    f"rank {self.rank} of {self.size}: the other ranks did not answer within {self.timeout:g} s "
                    f"while {doing}; a rank died, hangs, or left learn() early (look for its error). "
                    f"Raise DataParallel(timeout=...) if a step or the first compilation takes longer.")
            if waited > SPIN_SECONDS:  # spinning costs nothing while the answer is near; sched_yield did
                time.sleep(POLL_PAUSE)

    def allreduce(self, buffer, doing, op="sum"):
        """Sum (or minimum) of ``buffer`` over the ranks, in place."""
        self.wait([self.start_allreduce(buffer, op)], doing)
        return buffer

    def broadcast(self, buffer, doing):
        """Overwrite ``buffer`` with rank 0's, in place."""
        self.wait([self.comm.Ibcast(buffer, root=0)], doing)
        return buffer

    def allgather_bytes(self, data, doing):
        """Every rank's ``data`` (bytes of one agreed length) as a (size, len) uint8 array."""
        mine = np.frombuffer(data, dtype=np.uint8)
        out = np.empty((self.size, mine.size), np.uint8)
        self.wait([self.comm.Iallgather(mine, out)], doing)
        return out

    def allgather(self, obj):
        """Every rank's Python ``obj``; call only once every rank is known to be here."""
        return self.comm.allgather(obj)

    def bcast(self, obj):
        """Rank 0's Python ``obj``; call only once every rank is known to be here."""
        return self.comm.bcast(obj, root=0)
