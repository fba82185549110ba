"""jitbp's asv suite. Importing it prints the machine line (CPU model, OpenBLAS tuning
variables) to stderr, which ``asv run --show-stderr`` shows."""
import sys

from .common import machine_line

print(machine_line(), file=sys.stderr)
