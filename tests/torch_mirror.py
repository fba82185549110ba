"""Run a jitbp network's graph in PyTorch with copies of its parameters (the oracle)."""
import numpy as np

torch = __import__("pytest").importorskip("torch", reason="the PyTorch oracle needs torch: the [test] extra")
F = torch.nn.functional

ACTIVATIONS = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": lambda x: x,
    "softmax": lambda x: torch.softmax(x, dim=1),
}


def torch_params(net):
    return {key: torch.tensor(value, dtype=torch.float64, requires_grad=True)
            for key, value in net.params.items()}


def torch_forward(net, params, X):
    values = {id(net.inputs[0]): torch.tensor(np.asarray(X, dtype=np.float64))}
    for node in net.calls:
        xs = [values[id(inp)] for inp in node.inputs]
        name = net.layer_names[id(node.layer)]
        kind = node.layer.kind
        if kind == "dense":
            y = xs[0] @ params[f"{name}.W"].T
            if f"{name}.b" in params:
                y = y + params[f"{name}.b"]
        elif kind == "add":
            y = sum(xs[1:], xs[0])
        elif kind == "concat":
            y = torch.cat(xs, dim=1)
        else:
            y = ACTIVATIONS[kind](xs[0])
        values[id(node)] = y
    return values[id(net.output)]


def torch_loss(name, out, Y):
    if name == "cross_entropy":
        return F.cross_entropy(out, torch.tensor(np.asarray(Y), dtype=torch.long))
    target = torch.tensor(np.asarray(Y, dtype=np.float64)).reshape(out.shape)
    return {
        "sse": lambda: ((out - target) ** 2).sum(),
        "half_sse": lambda: 0.5 * ((out - target) ** 2).sum(),
        "mse": lambda: F.mse_loss(out, target),
        "mae": lambda: F.l1_loss(out, target),
        "bce": lambda: F.binary_cross_entropy(out, target),
    }[name]()


def torch_optimizer(optimizer, params):
    import jitbp

    values = list(params.values())
    settings = optimizer.settings()
    cls = {jitbp.SGD: torch.optim.SGD, jitbp.Adam: torch.optim.Adam,
           jitbp.RMSprop: torch.optim.RMSprop, jitbp.Adagrad: torch.optim.Adagrad}[type(optimizer)]
    if "betas" in settings:
        settings["betas"] = tuple(settings["betas"])
    return cls(values, **settings)


def torch_train(net, X, Y, loss, optimizer, epochs, batch_size, scheduler=None):
    """Per-epoch losses and final params of the same training run in PyTorch (no shuffle),
    with ``scheduler(opt)`` (a torch lr scheduler) stepped after every batch when given."""
    params = torch_params(net)
    opt = torch_optimizer(optimizer, params)
    sched = scheduler(opt) if scheduler is not None else None
    n = len(Y)
    size = n if batch_size is None else min(batch_size, n)
    history = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, n, size):
            stop = min(start + size, n)
            opt.zero_grad()
            value = torch_loss(loss, torch_forward(net, params, X[start:stop]), Y[start:stop])
            value.backward()
            opt.step()
            if sched is not None:
                sched.step()
            weight = (stop - start) / n if loss in ("mse", "mae", "cross_entropy", "bce") else 1.0
            total += value.item() * weight
        history.append(total)
    return history, {k: v.detach().numpy() for k, v in params.items()}


def torch_gradients(net, X, Y, loss):
    params = torch_params(net)
    torch_loss(loss, torch_forward(net, params, X), Y).backward()
    return {k: v.grad.numpy() for k, v in params.items()}
