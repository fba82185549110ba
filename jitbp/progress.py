"""Progress output for :func:`jitbp.training.learn` (Keras-style ``verbose``).

``verbose=0`` is silent; ``1`` keeps one live progress line (epoch, loss, validation
metrics, ETA) through tqdm when it is installed (``pip install jitbp[progress]``), or
a plain-text line per epoch without it; ``2`` prints a plain line per epoch. The
default (``None``) is 1 when stderr is an interactive terminal and 0 otherwise.
"""
import sys
import time


def resolve_verbose(verbose, stream=None):
    """``verbose`` as 0, 1 or 2; ``None``/``"auto"`` from whether ``stream`` is a terminal."""
    if verbose is None or verbose == "auto":
        stream = sys.stderr if stream is None else stream
        try:
            return 1 if stream.isatty() else 0
        except (AttributeError, ValueError):
            return 0
    if isinstance(verbose, bool):
        return int(verbose)
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2, True, False or None (auto), got {verbose!r}")
    return int(verbose)


def format_logs(logs):
    """``loss 0.1234 - val_loss 0.2 - val_accuracy 0.95``: every number but lr and seconds."""
    parts = []
    for key, value in logs.items():
        if key in ("epoch", "lr", "seconds"):
            continue
        parts.append(f"{key} {value:.4g}")
    return " - ".join(parts)


def _eta(seconds):
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


class Progress:
    """One learn() call's progress output to ``stream`` (stderr by default)."""

    def __init__(self, epochs, verbose=None, stream=None, use_tqdm=None):
        self.stream = sys.stderr if stream is None else stream
        self.verbose = resolve_verbose(verbose, self.stream)
        self.epochs = epochs
        self.start = time.perf_counter()
        self.bar = None
        if self.verbose == 1 and use_tqdm is not False:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=epochs, unit="epoch", file=self.stream, dynamic_ncols=True, leave=True)

    def epoch_end(self, epoch, logs):
        if not self.verbose:
            return
        text = format_logs(logs)
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / epoch * (self.epochs - epoch)
        width = len(str(self.epochs))
        print(f"epoch {epoch:{width}d}/{self.epochs} - {text} - {logs.get('seconds', 0.0):.3g}s"
              f"{' - ETA ' + _eta(eta) if epoch < self.epochs else ''}", file=self.stream, flush=True)

    def close(self, reason=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if reason and self.verbose:
            print(reason, file=self.stream, flush=True)
