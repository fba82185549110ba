"""Data-parallel training over MPI: ``mpiexec -n N python train.py`` with
``net.learn(..., parallel=DataParallel())``. mpi4py is imported only when a
:class:`DataParallel` is created. See docs/distributed.md.
"""
from .comm import DistributedError
from .data_parallel import DataParallel

__all__ = ["DataParallel", "DistributedError"]
