"""Errors that name the culprit: the layer, its plugin and the kernel a failure comes from.

A Numba compile failure of a layer kernel is raised as one short :class:`PluginError`
naming the layer kind, its plugin's distribution and version and the kernel, then the
line of the layer's code Numba stopped at and Numba's own message, without colour codes
and repeated blocks (the full message stays attached as the exception's cause). Shapes a
layer returns are checked where the graph is built.
"""
import linecache
import numbers
import os
import re

import numpy as np
from numba.core.errors import NumbaError, UnsupportedBytecodeError

from .errors import PluginError

#: What Numba raises when a function does not compile (an unsupported opcode is no NumbaError).
COMPILE_ERRORS = (NumbaError, UnsupportedBytecodeError)

#: Lines of Numba's message kept in the PluginError (the cause keeps all of them).
MAX_NUMBA_LINES = 30
#: Generated epoch aliases -> the kernel attribute they call (see capture.codegen).
_ALIASES = {"fwd": "forward_kernel", "bwd": "backward_kernel", "bwdfwd": "backward_forward_kernel"}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_TYPING_AT = re.compile(r"During: typing of .*? at (.+) \((\d+)\)")
_CALLEE = re.compile(r"During: resolving callee type: .*?<function (\w+)")
_RAISED_FROM = re.compile(r"(?:Raised from|at) (\S+) \((\d+)\)")
_FILE_LINE = re.compile(r'File "(.+?)", line (\d+):')
_GENERATED_CALL = re.compile(r"\b(bwdfwd|fwd|bwd)(\d+)\(")


def strip_ansi(text):
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)


def origin(layer):
    """``layer 'kind' (plugin 'name', distribution dist version)`` as the registry knows it."""
    from .plugins import registry

    cls = type(layer)
    info = registry().layers.get(getattr(layer, "kind", None))
    if info is None or info.cls is not cls:
        return f"layer {layer.kind!r} (class {cls.__module__}.{cls.__qualname__}, not registered by a plugin)"
    plugin = registry().plugins.get(info.plugin)
    if plugin is None or not plugin.distribution:
        return f"layer {layer.kind!r} (plugin {info.plugin!r} registered at run time, version {info.version})"
    return f"layer {layer.kind!r} (plugin {info.plugin!r}, distribution {plugin.distribution} {info.version})"


def compile_error(layer, attr, error):
    """The :class:`PluginError` for ``error``, Numba failing to compile ``layer.<attr>``.

    Also cleans ``error``'s own text (colour codes), as it is chained below."""
    kernel = getattr(layer, attr)
    func = getattr(kernel, "py_func", kernel)
    message = _clean(error)
    lines = [f"{origin(layer)}: its {attr} {func.__module__}.{func.__qualname__} does not compile "
             f"(Numba {type(error).__name__})."]
    code = getattr(func, "__code__", None)
    where = code and _typing_site(message, code.co_filename)
    if where:
        line, callee = where
        source = linecache.getline(code.co_filename, line).strip()
        lines.append(f"  at {os.path.basename(code.co_filename)} line {line}: {source}")
        if callee and callee != func.__name__:
            lines.append(f"  the failure is inside {callee}, called there: check the types of the arguments "
                         f"passed to it")
    lines.append(f"  Numba says: {_complaint(message)}")
    lines.append("Numba's message (shortened):")
    lines.extend("  " + line for line in _shorten(message))
    return PluginError("\n".join(lines))


def captured_compile_error(net, text, error):
    """The :class:`PluginError` naming the layer whose kernel made the generated epoch of
    ``text`` fail to compile, or ``None`` when no layer kernel is to blame."""
    from .capture.cache import module_name

    message = _clean(error)
    generated = module_name(text) + ".py"
    lines = text.splitlines()
    for path, line in _TYPING_AT.findall(message):
        if os.path.basename(path) != generated or not 0 < int(line) <= len(lines):
            continue
        call = _GENERATED_CALL.search(lines[int(line) - 1])
        if call and int(call.group(2)) < len(net.calls):
            return compile_error(net.calls[int(call.group(2))].layer, _ALIASES[call.group(1)], error)
    kernels = [(node.layer, attr, getattr(getattr(node.layer, attr, None), "py_func", None))
               for node in net.calls for attr in _ALIASES.values()]
    kernels = [(layer, attr, func) for layer, attr, func in kernels if func is not None]
    for callee in _CALLEE.findall(message):  # inlined kernels leave no call line
        for layer, attr, func in kernels:
            if func.__name__ == callee:
                return compile_error(layer, attr, error)
    for layer, attr, func in kernels:  # failures before typing (bytecode) name only a source line
        where = _typing_site(message, func.__code__.co_filename)
        if where and func.__code__.co_firstlineno <= where[0] <= max(
                line for _, _, line in func.__code__.co_lines() if line is not None):
            return compile_error(layer, attr, error)
    return None


def check_output_shape(layer, input_shapes, shape):
    """``shape`` as a tuple of ints, or a :class:`PluginError` naming the layer and the value."""
    if not _is_shape(shape, minimum=1):
        raise PluginError(f"{origin(layer)}: output_shape({list(input_shapes)}) returned {shape!r} "
                          f"({type(shape).__name__}); it must return the per-sample output shape as a "
                          f"tuple of positive ints")
    return tuple(int(s) for s in shape)


def check_workspace_shapes(layer, batch, input_shapes):
    """``layer.workspace_shapes(batch, input_shapes)``, or a :class:`PluginError` naming the layer
    and the value when it is not a tuple of shapes (tuples of non-negative ints)."""
    shapes = layer.workspace_shapes(batch, list(input_shapes))
    if not isinstance(shapes, (tuple, list)) or not all(_is_shape(s, minimum=0) for s in shapes):
        raise PluginError(f"{origin(layer)}: workspace_shapes({batch}, {list(input_shapes)}) returned "
                          f"{shapes!r} ({type(shapes).__name__}); it must return a tuple of shapes, "
                          f"each a tuple of non-negative ints")
    return tuple(tuple(int(d) for d in s) for s in shapes)


def _is_shape(shape, minimum):
    return isinstance(shape, (tuple, list)) and all(
        isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_)) and d >= minimum for d in shape)


def _clean(error):
    """``error``'s text without colour codes, written back into ``error``."""
    message = strip_ansi(str(error))
    error.args = (message,) + error.args[1:]
    return message


def _typing_site(message, filename):
    """``(line, callee)``: the innermost line of ``filename`` Numba was typing, and the last
    function it resolved before (``None`` if the failure is on that line itself). Other files'
    call lines do not reset it: Numba replays a cached typing failure with the call site
    that first met it (another layer's file) added."""
    callee = None
    for line in message.splitlines():
        found = _CALLEE.search(line)
        if found:
            callee = found.group(1)
            continue
        found = _TYPING_AT.search(line)
        if found and _same_file(found.group(1), filename):
            return int(found.group(2)), callee
    for pattern in (_RAISED_FROM, _FILE_LINE):  # other stages than typing: the first mention
        for path, line in pattern.findall(message):
            if _same_file(path, filename):
                return int(line), None
    return None


def _same_file(path, filename):
    """Numba writes paths absolute, or relative to the working directory."""
    return os.path.realpath(path) == os.path.realpath(filename)


def _complaint(message):
    """Numba's first real sentence, with the signature line that follows a "No implementation"."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Failed in ")]
    if not lines:
        return "(no message)"
    found = lines[0]
    signature = next((line for line in lines[1:4] if line.startswith(">>>")), None)
    return f"{found} {signature}" if signature else found


def _shorten(message):
    """Numba's lines without blank lines, pass markers, addresses and repeated source blocks."""
    kept, blocks, block = [], set(), []

    def flush():
        text = "\n".join(block)
        if block and text not in blocks:
            blocks.add(text)
            kept.extend(block)
        block.clear()

    for line in _ADDRESS.sub("", message).splitlines():
        if not line.strip() or line.startswith("During: Pass ") or (kept and line.startswith("Failed in ")
                                                                     and kept[-1] == line):
            continue
        if line.startswith("File "):
            flush()
            block.append(line)
        elif block and not line.startswith("During:"):
            block.append(line)
        else:
            flush()
            kept.append(line)
    flush()
    if len(kept) > MAX_NUMBA_LINES:
        kept = kept[:MAX_NUMBA_LINES] + [f"... ({len(kept) - MAX_NUMBA_LINES} more lines in the chained error)"]
    return kept
