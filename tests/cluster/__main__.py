"""Command line for the local test cluster.

    python -m tests.cluster up|down|status|kubeconfig
    python -m tests.cluster stop|start|pause|resume <component>    (fault tests)
    python -m tests.cluster images [--containerd ADDRESS]          (the real node's images)
    python -m tests.cluster podstart [--pods N]                   (pod start latency on the real node)
    python -m tests.cluster knative                               (Knative + Traefik installed: tests/knative)

The environment picks the cluster: JOBFN_CLUSTER_DIR, JOBFN_APISERVER_PORT and
JOBFN_CLUSTER_COMPONENTS (see localcluster.py); unset, it is the shared one.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


def _images(containerd: Path | None) -> int:
    from tests.cluster import images  # buildah and friends are only needed for this command

    for built in images.build_images():
        took = "cached" if built.seconds is None else f"built in {built.seconds:.1f}s"
        print(f"{built.image.name:10} {built.size / 2**20:7.1f} MiB  {took:18} {' '.join(built.image.refs)}")
    if containerd is not None:
        started = time.monotonic()
        images.ensure_images(containerd)
        print(f"imported into {containerd} in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


def _podstart(pods: int) -> int:
    from tests.cluster import podstart  # needs the kubernetes client, which nothing else here does

    print(podstart.report(podstart.measure(pods)))
    return 0


def _knative() -> int:
    from tests.knative import install  # builds Knative once per machine; nothing else here needs it

    return install.main()


def _stop_component(component: str) -> int:
    localcluster.stop_component(component)
    print(f"{component} killed; its state is kept", file=sys.stderr)
    return 0


def _start_component(component: str) -> int:
    seconds = localcluster.start_component(component)
    print(f"{component} healthy after {seconds:.1f}s", file=sys.stderr)
    return 0


def _pause_component(component: str) -> int:
    localcluster.pause_component(component)
    return 0


def _resume_component(component: str) -> int:
    localcluster.resume_component(component)
    return 0


COMMANDS: dict[str, Callable[[], int]] = {
    "up": _up,
    "down": _down,
    "status": _status,
    "kubeconfig": _kubeconfig,
}
COMPONENT_COMMANDS: dict[str, Callable[[str], int]] = {
    "stop": _stop_component,
    "start": _start_component,
    "pause": _pause_component,
    "resume": _resume_component,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "command",
        choices=[*COMMANDS, *COMPONENT_COMMANDS, "images", "podstart", "knative"],
        help="up: start (idempotent); down: stop and wipe state; stop/start/pause/resume one component",
    )
    parser.add_argument("component", nargs="?", choices=localcluster.COMPONENTS)
    parser.add_argument(
        "--containerd", type=Path, help="images: also import into the containerd at this socket"
    )
    parser.add_argument("--pods", type=int, default=50, help="podstart: how many pods to time")
    args = parser.parse_args(argv)
    try:
        if args.command == "images":
            return _images(args.containerd)
        if args.command == "podstart":
            return _podstart(args.pods)
        if args.command == "knative":
            return _knative()
        if args.command in COMPONENT_COMMANDS:
            if args.component is None:
                parser.error(f"{args.command} needs a component")
            return COMPONENT_COMMANDS[args.command](args.component)
        return COMMANDS[args.command]()
    except localcluster.ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
