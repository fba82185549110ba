"""Data-parallel training under ``mpiexec -n 2`` equals one process on the combined batches,
and a rank that disagrees, exits or fails is an error on the others, not a hang."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import mpi_cases
from jitbp.distributed.launch import find_mpiexec

pytest.importorskip("mpi4py", reason="the MPI tests need the [mpi] extra (mpi4py and mpich)")
MPIEXEC = find_mpiexec()
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec found: pip install mpich (the [mpi] extra)")

SCRIPT = os.path.join(os.path.dirname(__file__), "mpi_cases.py")
#: Seconds one mpiexec run may take (compilation on a cold cache included).
RUN_TIMEOUT = 240


def mpirun(scenario, out, ranks=2):
    """Run a scenario of mpi_cases.py on ``ranks`` ranks, one thread each."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", JITBP_CAPTURE="never",
               PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(__file__)),
                                                        os.environ.get("PYTHONPATH")])))
    start = time.monotonic()
    result = subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, SCRIPT, scenario, str(out)], env=env,
                            capture_output=True, text=True, timeout=RUN_TIMEOUT)
    return result, time.monotonic() - start


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi-exact")
    result, _ = mpirun("exact", out)
    assert result.returncode == 0, result.stdout + result.stderr
    return {case: [dict(np.load(out / f"{case}.rank{rank}.npz")) for rank in (0, 1)] for case in mpi_cases.CASES}


@pytest.mark.parametrize("case", mpi_cases.EXACT)
def test_two_ranks_equal_one_process_on_the_combined_batch(case, two_rank_results, monkeypatch):
    monkeypatch.setenv("JITBP_CAPTURE", "never")
    expected = mpi_cases.run_case(case)
    for rank, got in enumerate(two_rank_results[case]):
        assert sorted(got) == sorted(expected), rank
        for key, value in expected.items():
            if key == "error":
                want, have = json.loads(str(value)), json.loads(str(got[key]))
                assert (have["epoch"], have["batch"]) == (want["epoch"], want["batch"]), have["message"]
            else:
                np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-12, err_msg=f"rank {rank} {key}")


@pytest.mark.parametrize("case", list(mpi_cases.CASES))
def test_every_rank_ends_with_the_same_state(case, two_rank_results):
    first, second = two_rank_results[case]
    for key in first:
        assert first[key].tobytes() == second[key].tobytes(), key


def test_local_sgd_divergence_restores_the_last_synchronisation(two_rank_results):
    for got in two_rank_results["weights-every-2-diverges"]:
        error = json.loads(str(got["error"]))
        assert (error["epoch"], error["batch"]) == (1, 4)
        assert "back at the last synchronisation, before batch 3" in error["message"]


def test_ranks_given_different_data_or_networks_all_say_so(tmp_path):
    result, _ = mpirun("setups", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for rank in (0, 1):
        messages = json.loads((tmp_path / f"setups.rank{rank}.json").read_text())
        assert "rank 1 has data.samples 36, rank 0 37" in messages["samples"], messages["samples"]
        assert "rank 1 has network.parameters.dense_0.W [8, 5], rank 0 [7, 5]" in messages["network"], messages


def test_a_rank_that_exits_stops_the_job(tmp_path):
    result, seconds = mpirun("exits", tmp_path)
    assert result.returncode != 0 and seconds < RUN_TIMEOUT / 2, (seconds, result.stderr)


def test_a_rank_that_leaves_learn_is_a_timeout_error_on_the_others(tmp_path):
    result, _ = mpirun("raises", tmp_path)
    assert result.returncode != 0
    assert (tmp_path / "fails.rank1.txt").read_text() == "RuntimeError: rank 1 fails on its own"
    message = (tmp_path / "fails.rank0.txt").read_text()
    assert message.startswith("DistributedError: rank 0 of 2: the other ranks did not answer within 3 s"), message


def test_importing_jitbp_distributed_does_not_import_mpi4py():
    code = "import sys, jitbp.distributed; assert 'mpi4py' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_dropout_under_gradient_sync_draws_each_steps_masks_from_the_learn_seed(tmp_path):
    from jitbp.distributed.slices import batch_rows, bounds
    from jitbp.rng import call_seed, uniform

    result, _ = mpirun("dropout", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    key = call_seed(np.uint64(mpi_cases.SEED), 0)
    batches = [len(rows) for rows in batch_rows(np.arange(mpi_cases.N_SAMPLES), mpi_cases.N_SAMPLES,
                                                mpi_cases.BATCH)] * 2
    for rank in (0, 1):
        masks = np.load(tmp_path / f"dropout.rank{rank}.npz")
        masks = [masks[f"arr_{k}"] for k in range(len(masks.files))]
        assert len(masks) == len(batches), rank
        for step, (mask, size) in enumerate(zip(masks, batches), start=1):
            start, stop = bounds(size, rank, 2)
            expected = np.array([uniform(key, np.int64(step), i) >= 0.5 for i in range((stop - start) * 5)])
            np.testing.assert_array_equal(mask.reshape(-1), expected, err_msg=f"rank {rank} step {step}")
        assert not np.array_equal(masks[0], masks[1]), "step 2 repeated step 1's dropout mask"
