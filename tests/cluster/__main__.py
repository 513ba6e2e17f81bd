"""Command line for the local test cluster: python -m tests.cluster up|down|status|kubeconfig."""

from __future__ import annotations

import argparse
import sys
import time

from tests.cluster import localcluster


def _up() -> int:
    started = time.monotonic()
    was_running = localcluster.is_running()
    path = localcluster.ensure_running()
    verb = "already running" if was_running else f"started in {time.monotonic() - started:.1f}s"
    print(f"cluster {verb}; logs in {localcluster.state_dir() / 'logs'}", file=sys.stderr)
    print(f"export KUBECONFIG={path}")
    return 0


def _down() -> int:
    localcluster.stop()
    print("cluster stopped, state removed", file=sys.stderr)
    return 0


def _status() -> int:
    for component, pid in localcluster.status().items():
        print(f"{component:24} {'pid ' + str(pid) if pid else 'not running'}")
    healthy = localcluster.is_running()
    print(f"{'cluster':24} {'healthy' if healthy else 'not healthy'} ({localcluster.state_dir()})")
    return 0 if healthy else 1


def _kubeconfig() -> int:
    path = localcluster.kubeconfig_path()
    print(path)
    return 0 if path.exists() else 1


COMMANDS = {"up": _up, "down": _down, "status": _status, "kubeconfig": _kubeconfig}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__)
    parser.add_argument("command", choices=COMMANDS, help="up: start (idempotent); down: stop and wipe state")
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command]()
    except localcluster.ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
