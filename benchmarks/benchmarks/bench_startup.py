"""What a user waits for before training starts: import, plugin discovery, compilation."""
import tempfile

from . import common


def timeraw_import_and_discover_plugins():
    return "import jitbp; jitbp.available_layers()"


def track_cold_start_seconds():
    """Fresh process, empty Numba cache: import + first MLP training step."""
    with tempfile.TemporaryDirectory() as cache:
        return common.start_seconds(cache)


track_cold_start_seconds.unit = "seconds"


def track_warm_start_seconds():
    """Fresh process, Numba cache filled by a previous process: import + first MLP step."""
    with tempfile.TemporaryDirectory() as cache:
        common.start_seconds(cache)
        return common.start_seconds(cache)


track_warm_start_seconds.unit = "seconds"
