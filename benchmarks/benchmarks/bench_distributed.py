"""Data-parallel throughput (asv ``track_``): asv times one process, so each case launches
``mpiexec`` in a subprocess and reports the samples/s its rank 0 measured."""
import importlib.util

from . import mpi_throughput


class DistributedMLP:
    """784-256-128-10 MLP, float32, SGD: one process vs 2 ranks, one thread each."""

    params = ([32, 1024], ["single", "gradients", "weights-16"])
    param_names = ["batch", "run"]
    timeout = 600

    def setup(self, batch, run):
        from jitbp.distributed.launch import find_mpiexec

        if run != "single" and (importlib.util.find_spec("mpi4py") is None or find_mpiexec() is None):
            raise NotImplementedError  # asv skips: the [mpi] extra is not installed

    def track_samples_per_second(self, batch, run):
        if run == "single":
            return mpi_throughput.measure(1, batch, None)
        sync, _, every = run.partition("-")
        return mpi_throughput.measure(2, batch, sync, int(every or 1))

    track_samples_per_second.unit = "samples/s"
