"""Kueue on the local cluster by hand: ``python -m tests.kueue [up|stop]``.

``up`` (the default) starts the cluster if needed, builds Kueue once per machine and
installs it unless it is installed as rendered now, printing how long that took; it is left
running. ``stop`` scales it to zero after removing its visibility APIServices (what the
``kueue`` fixture does when the last session using it ends).
"""

from __future__ import annotations

import sys

from tests.cluster import localcluster
from tests.kueue.install import ensure_installed, stop, version


def main() -> int:
    if sys.argv[1:] == ["stop"]:
        stop(localcluster.ensure_running())
        print("Kueue stopped", file=sys.stderr)
        return 0
    seconds = ensure_installed(localcluster.ensure_running())
    print(f"Kueue {version()} installed and serving ({seconds:.1f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
