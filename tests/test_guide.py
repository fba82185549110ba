"""The guide's sections on per-step schedules and data bigger than memory run as written
(after its first block, which loads the digits)."""
import pathlib
import re

import pytest

GUIDE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "guide.md"
SECTIONS = ("### Per-step schedules", "## Data bigger than memory")


def section(text, title):
    """The text from heading ``title`` to the next heading of the same or a higher level."""
    level = title.split(" ")[0]
    start = text.index(title + "\n")
    rest = text[start + len(title):]
    ends = [m.start() for m in re.finditer(r"^(#+) ", rest, re.M) if len(m.group(1)) <= len(level)]
    return rest[:ends[0]] if ends else rest


def blocks(text):
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_guide_sections_on_streaming_and_per_step_schedules_run():
    pytest.importorskip("sklearn", reason="the guide loads scikit-learn's digits")
    text = GUIDE.read_text()
    namespace = {}
    code = [blocks(text)[0]] + [block for title in SECTIONS for block in blocks(section(text, title))]
    assert len(code) == 4
    for block in code:
        exec(compile(block, str(GUIDE), "exec"), namespace)
    history = namespace["history"]
    assert len(history) == 5 and history.history["val_accuracy"][-1] > 0.8
    assert namespace["warm_cosine"].epochs == 10 * -(-len(namespace["X_train"]) // 64)
