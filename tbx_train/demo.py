"""The main job of `make demo`: the embedded default, end to end on this machine.

Grows as the parts land: today it checks that both command-line tools start.
"""

from __future__ import annotations

import subprocess
import sys


def main() -> int:
    """Run each step in order and stop at the first failure."""
    for module in ("tbx_doctor", "tbx_train"):
        subprocess.run([sys.executable, "-m", module, "--help"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
