"""Data-parallel training of the digits MLP over MPI, against one process.

    pip install -e '.[mpi,demo]'
    mpiexec -n 2 python examples/distributed_digits.py [--sync weights --every 4] [--save digits.jitbp]

Every rank loads the same data and trains its slice of each batch of 32 (the demo's
recipe: MLP 64-128-10, Adam, 30 epochs). Rank 0 then trains the same network in one
process and prints both test accuracies: with ``--sync gradients`` (the default)
they agree, since the weights agree to rounding.
"""
import argparse
import time

import numpy as np

import jitbp
from jitbp.demo import build, load_digits
from jitbp.distributed import DataParallel


def train(parallel, data, args):
    X, y, X_test, y_test = data
    net = build(args.seed)
    optimizer = jitbp.Adam(lr=1e-3)
    start = time.perf_counter()
    history = net.learn(X, y, loss="cross_entropy", optimizer=optimizer, epochs=args.epochs, batch_size=32,
                        seed=args.seed, parallel=parallel)
    accuracy = float(np.mean(net.predict(X_test).argmax(axis=1) == y_test))
    return net, optimizer, history, accuracy, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sync", choices=["gradients", "weights"], default="gradients")
    parser.add_argument("--every", type=int, default=1, help='steps between syncs for --sync weights')
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", help="write the trained model here (rank 0 only)")
    args = parser.parse_args()
    parallel = DataParallel(sync=args.sync, every=args.every)
    data = load_digits(args.seed)
    net, optimizer, history, accuracy, seconds = train(parallel, data, args)
    if args.save:
        parallel.save(net, args.save, optimizer)
    if parallel.root:
        print(f"{parallel.size} ranks, sync={args.sync}" + (f" every {args.every}" if args.sync == "weights" else "")
              + f": loss {history[0]:.4f} -> {history[-1]:.4f}; test accuracy {accuracy:.2%} ({seconds:.1f} s)")
        _, _, single_history, single_accuracy, single_seconds = train(None, data, args)
        print(f"1 process: loss {single_history[0]:.4f} -> {single_history[-1]:.4f}; "
              f"test accuracy {single_accuracy:.2%} ({single_seconds:.1f} s)")


if __name__ == "__main__":
    main()
