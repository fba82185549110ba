"""Code generation: one network's tape and loss written out as the source of a Python module.

The forward calls, the loss, then the unwinding in reverse, with fan-in sums and
shared-layer updates resolved ahead of time; :mod:`.templates` supplies the rest.
"""
import importlib

from .. import tiers
from ..unwind import backward_plan
from .cache import source_fingerprint
from .templates import EPOCH, HEADER

#: Kernels are inlined into the step (``Layer.inline_kernels``) only in graphs of at most
#: this many calls: Numba types and LLVM optimises an inlined step as one function, whose
#: compile time grows faster than its length (a 10-call chain of tiny dense layers took
#: over three minutes); the small graphs inlining speeds up stay well below it.
INLINE_MAX_CALLS = 8


def kernel_name(kernel):
    """``(module, name)`` through which ``kernel`` can be imported, or ``None``."""
    func = getattr(kernel, "py_func", None)
    if func is None or func.__module__ == "__main__":  # a script's module cannot be re-imported
        return None
    try:
        module = importlib.import_module(func.__module__)
    except ImportError:
        return None
    if getattr(module, "__file__", None) is None:
        return None
    return (func.__module__, func.__name__) if getattr(module, func.__name__, None) is kernel else None


class Source:
    """Builds the generated module's text for one network and loss."""

    def __init__(self, net, loss):
        self.net = net
        self.forms = [tiers.form(node.layer) for node in net.calls]
        #: Contract-2 calls get a Context built in the step from ``C`` (see :mod:`.runtime`).
        self.contexts = any(form != tiers.CONTRACT1 for form in self.forms)
        self.imports = {}
        self.lines = []
        self.fwd = [self._alias(node.layer.forward_kernel, f"fwd{k}") for k, node in enumerate(net.calls)]
        self.bwd = [self._alias(node.layer.backward_kernel, f"bwd{k}") for k, node in enumerate(net.calls)]
        self.loss = self._alias(loss.kernel, "loss_kernel")
        small = len(net.calls) <= INLINE_MAX_CALLS
        self.inlined = {f"{kind}{k}" for k, node in enumerate(net.calls) if small and node.layer.inline_kernels
                        for kind in ("fwd", "bwd")}
        self.shared = {id(layer): g for g, layer in enumerate(net.shared_layers)}
        #: Calls fed only by network inputs run the next batch's forward inside their
        #: backward when the layer offers it (``Layer.backward_forward_kernel``) in a form
        #: the generated module can import; otherwise they run as before.
        self.ahead = {}
        for k, node in enumerate(net.calls):
            fused = node.layer.backward_forward_kernel
            if (fused is not None and self.forms[k] == tiers.CONTRACT1 and kernel_name(fused) is not None
                    and id(node.layer) not in self.shared
                    and all(inp.is_input for inp in node.inputs)):
                self.ahead[k] = self._alias(fused, f"bwdfwd{k}")
        self.scratch = []  # (call, slot) for every private input-delta buffer
        self._step(loss)

    def _alias(self, kernel, alias):
        ref = kernel_name(kernel)
        if ref is None:
            raise LookupError(f"kernel {kernel!r} is not importable by module and name")
        self.imports[alias] = ref
        return alias

    def _value(self, node, inputs="BX"):
        if node.is_input:
            return f"{inputs}[{self.net.inputs.index(node)}]"
        return f"V[{self.net.index[id(node)]}]"

    def _emit(self, line):
        self.lines.append("    " + line)

    def _step(self, loss):
        net = self.net
        last = len(net.calls) - 1
        self._emit("BX, BT, V, D, WS, SC = bufs")
        for k, node in enumerate(net.calls):
            xs = "".join(self._value(inp) + ", " for inp in node.inputs)
            if self.forms[k] != tiers.CONTRACT1:
                self._emit(f"ctx{k} = Context(True, C[0][{k}], C[1][{k}], WS[{k}], C[2][{k}], t)")
            if k in self.ahead:
                self._emit("if not ahead:")
            call = tiers.forward_source(self.forms[k], self.fwd[k], xs=f"({xs})", params=f"P[{k}]", y=f"V[{k}]",
                                        ws=f"WS[{k}]", ctx=f"ctx{k}")
            self._emit(("    " if k in self.ahead else "") + call)
        target = "BT" if loss.labels else "BT.reshape(n, -1)"
        self._emit("n = BT.shape[0]")
        self._emit(f"value = {self.loss}(V[{last}].reshape(n, -1), {target}, D[{last}].reshape(n, -1))")
        self._emit("if not np.isfinite(value):")
        self._emit("    return value")
        unwound = set()
        for k, step in reversed(list(enumerate(backward_plan(net)))):
            self._unwind(k, step, unwound)
        self._emit("return value")

    def _unwind(self, k, step, unwound):
        net = self.net
        node = net.calls[k]
        if tiers.skips_backward(self.forms[k], step.need_dx):
            return
        dxs, scratch_of = [], {}
        for slot, target in enumerate(step.delta_of):
            if target is None:
                scratch_of[slot] = len(self.scratch)
                self.scratch.append((k, slot))
                dxs.append(f"SC[{scratch_of[slot]}]")
            else:
                dxs.append(f"D[{target}]")
        xs = "".join(self._value(inp) + ", " for inp in node.inputs)
        shared = self.shared.get(id(node.layer))
        rule, states = ("rule", f"ST[{k}]") if shared is None else ("ACCUMULATE", f"G[{shared}]")
        if shared is not None and id(node.layer) not in unwound:
            unwound.add(id(node.layer))
            self._emit(f"for g in G[{shared}]:")
            self._emit("    g[:, :] = 0.0")
        args = dict(xs=f"({xs})", y=f"V[{k}]", dy=f"D[{k}]", dxs=f"({''.join(d + ', ' for d in dxs)})",
                    need_dx=str(step.need_dx), params=f"P[{k}]", rule=rule, hyper="hyper", states=states,
                    grads=f"C[3][{k}]", ws=f"WS[{k}]", ctx=f"ctx{k}")
        if k in self.ahead:
            next_xs = "".join(self._value(inp, "NX") + ", " for inp in node.inputs)
            self._emit("if fuse:")
            self._emit(f"    {tiers.backward_source(self.forms[k], self.ahead[k], **args)[:-1]}, ({next_xs}), NV[{k}])")
            self._emit("else:")
            self._emit(f"    {tiers.backward_source(self.forms[k], self.bwd[k], **args)}")
        else:
            self._emit(tiers.backward_source(self.forms[k], self.bwd[k], **args))
        if self.forms[k] == tiers.GRADIENT:
            for j in range(len(node.layer.params)):
                self._emit(f"apply_gradient({rule}, P[{k}][{j}], C[3][{k}][{j}], {states}[{j}], hyper)")
        for slot, target in step.fan_in:
            self._emit(f"add_into(D[{target}], SC[{scratch_of[slot]}])")
        if shared is not None and net.first_call_of(node.layer) is node:
            for j in range(len(node.layer.params)):
                self._emit(f"apply_gradient(rule, P[{k}][{j}], G[{shared}][{j}], ST[{k}][{j}], hyper)")

    def text(self, loss):
        imports = "".join(
            f"from {module} import {name} as _{alias}\n{alias} = njit(inline=\"always\")(_{alias}.py_func)\n"
            if alias in self.inlined else f"from {module} import {name} as {alias}\n"
            for alias, (module, name) in sorted(self.imports.items()))
        packages = sorted({module.split(".")[0] for module, _ in self.imports.values()} | {"jitbp"})
        stamp = f"# kernel sources: {source_fingerprint(packages)}\n"
        if self.contexts:
            imports += "from jitbp.context import Context\n"
        extra = ", C, t" if self.contexts else ""
        step = ("\n\n@njit(cache=True)\n"
                f"def step(bufs, NX, NV, ahead, fuse, P, ST, G, rule, hyper{extra}):\n")
        gathers = "\n".join(f"    gather(X[{j}], order, start, BX[{j}])" for j in range(len(self.net.inputs)))
        weight = "value * (stop - start) / n" if loss.mean else "value"
        return (HEADER + stamp + imports + f"FUSE_AHEAD = {bool(self.ahead)}\n" + step + "\n".join(self.lines)
                + "\n" + EPOCH.format(gathers=gathers, weight=weight, ctx_param=", C" if self.contexts else "",
                             ctx_args=", C, C[4] + done + 1" if self.contexts else ""))
