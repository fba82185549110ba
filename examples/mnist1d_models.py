"""MNIST-1D (Greydanus 2020) with jitbp and the conv plugin: the paper's three models.

Trains logistic regression, an MLP(100, 100) and a CNN (three conv1d layers of 25
channels, kernel 5, stride 2, padding 2, relu; then flatten + dense) with Adam
(lr 1e-2, batch 100) in float32, and prints test accuracy and wall time. When
PyTorch is installed, the same recipe runs there too (2 threads, the same initial
weights) and the time ratio is printed. The data set is generated locally by the
``mnist1d`` package (4000 train / 1000 test samples of length 40).

    pip install -e ".[examples]" -e ./plugins/jitbp-conv
    python examples/mnist1d_models.py [--epochs 150] [--models logistic mlp cnn] [--no-torch]
"""
import argparse
import time

import numpy as np

import jitbp

LENGTH, CLASSES, CHANNELS = 40, 10, 25


def load_data():
    """``(X, y, X_test, y_test)`` of MNIST-1D as float32 samples of shape (1, 40)."""
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())
    prepare = lambda x: np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 1, LENGTH)  # noqa: E731
    return prepare(data["x"]), data["y"], prepare(data["x_test"]), data["y_test"]


def build(model, seed=0):
    """The jitbp network for ``model``, taking (1, 40) samples."""
    x = jitbp.Input((1, LENGTH))
    if model == "cnn":
        h, channels = x, 1
        for k in range(3):
            h = jitbp.layer("conv1d", channels, CHANNELS, 5, stride=2, padding=2, seed=seed + k)(h)
            h, channels = jitbp.layer("relu")(h), CHANNELS
        h = jitbp.layer("flatten")(h)
        out = jitbp.layer("dense", h.shape[0], CLASSES, seed=seed + 3)(h)
    else:
        h = jitbp.layer("flatten")(x)
        widths = [LENGTH, 100, 100] if model == "mlp" else [LENGTH]
        for k, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            h = jitbp.layer("relu")(jitbp.layer("dense", n_in, n_out, seed=seed + k)(h))
        out = jitbp.layer("dense", widths[-1], CLASSES, seed=seed + len(widths))(h)
    return jitbp.Network(x, out, dtype=np.float32)


def accuracy(scores, labels):
    return float(np.mean(np.argmax(scores, axis=1) == labels))


def train_jitbp(net, data, epochs, seed, report_every=10):
    """Train with Adam, printing the loss every ``report_every`` epochs; ``(accuracy, seconds)``."""
    X, y, X_test, y_test = data
    optimizer = jitbp.Adam(lr=1e-2)  # keeps its state across the learn calls
    start = time.perf_counter()
    for done in range(0, epochs, report_every):
        chunk = min(report_every, epochs - done)
        history = net.learn(X, y, loss="cross_entropy", optimizer=optimizer, epochs=chunk, batch_size=100,
                            seed=seed + done)
        print(f"  epoch {done + chunk}/{epochs}: loss {history[-1]:.4f}, {time.perf_counter() - start:.1f} s"
              + (" (includes compiling)" if done == 0 else ""), flush=True)
    elapsed = time.perf_counter() - start
    return accuracy(net.predict(X_test), y_test), elapsed


def torch_mirror(net):
    """The same network in PyTorch, starting from ``net``'s current weights."""
    import torch

    modules = []
    for node in net.calls:
        layer, params = node.layer, node.layer.params
        if layer.kind == "conv1d":
            module = torch.nn.Conv1d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                     stride=layer.stride, padding=layer.padding)
        elif layer.kind == "dense":
            module = torch.nn.Linear(layer.n_in, layer.n_out)
        else:
            modules.append({"relu": torch.nn.ReLU, "flatten": torch.nn.Flatten}[layer.kind]())
            continue
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(params["W"]))
            module.bias.copy_(torch.from_numpy(params["b"]))
        modules.append(module)
    return torch.nn.Sequential(*modules)


def train_torch(model, data, epochs, seed):
    import torch

    torch.set_num_threads(2)
    X, y, X_test, y_test = (torch.from_numpy(np.asarray(a)) for a in data)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(y)))
        for rows in order.split(100):
            optimizer.zero_grad()
            loss_fn(model(X[rows]), y[rows]).backward()
            optimizer.step()
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        return accuracy(model(X_test).numpy(), y_test.numpy()), elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150, help="passes over the 4000 training samples")
    parser.add_argument("--models", nargs="+", default=["logistic", "mlp", "cnn"], choices=["logistic", "mlp", "cnn"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
        use_torch = not args.no_torch
    except ImportError:
        use_torch = False
    data = load_data()
    print(f"MNIST-1D: {len(data[1])} train / {len(data[3])} test, Adam lr 1e-2, batch 100, "
          f"{args.epochs} epochs, float32")
    results = {}
    for model in args.models:
        net = build(model, args.seed)
        mirror = torch_mirror(net) if use_torch else None
        print(f"{model}: training with jitbp", flush=True)
        acc, seconds = train_jitbp(net, data, args.epochs, args.seed)
        line = f"{model:<9} jitbp {acc:6.1%} in {seconds:6.2f} s"
        if mirror is not None:
            print(f"{model}: training with PyTorch", flush=True)
            t_acc, t_seconds = train_torch(mirror, data, args.epochs, args.seed)
            line += f" | PyTorch {t_acc:6.1%} in {t_seconds:6.2f} s | PyTorch/jitbp time {t_seconds / seconds:.2f}x"
        print(line, flush=True)
        results[model] = acc
    return results


if __name__ == "__main__":
    main()
