"""The Knative parts' cluster: the local one (tests/cluster), with Knative installed on demand."""

from __future__ import annotations

import time
from typing import Any

from .harness import Bench


def knative_kubectl(bench: Bench, part: str) -> Any:
    """kubectl (tests/helpers' runner) for the local cluster, Knative installed there first
    (tests/knative/install.py: built once per machine, applied once per cluster)."""
    from tests.cluster import localcluster
    from tests.helpers import kubectl_runner
    from tests.knative import install

    if bench.cluster.kubeconfig.resolve() != localcluster.kubeconfig_path().resolve():
        raise RuntimeError(f"the {part} part runs on the local cluster (tests/cluster), not on $KUBECONFIG's")
    began = time.monotonic()
    installed = install.install()
    verb = "installed" if installed.applied else "already installed"
    bench.say(f"{part}: Knative {installed.knative_version} {verb}, {time.monotonic() - began:.1f} s")
    return kubectl_runner(localcluster.kubectl_path(), localcluster.kubeconfig_path())
