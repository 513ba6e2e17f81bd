"""Faults on demand: a dedicated control plane whose components can be killed, and the function as a process.

The fault cluster is etcd and kube-apiserver alone, from tests/cluster with its own
state dir and ports (never the shared cluster every other test uses): no controller-
manager, scheduler or KWOK, which would exit when their leader election fails during
an outage, and which creating Jobs does not need. It is driven through
``python -m tests.cluster`` with its environment, so the shared cluster's settings in
this process are never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.cluster.localcluster import port_in_use
from tests.e2e.conftest import write_definitions
from tests.helpers import ROOT, FunctionServer, start_function

FAULT_COMPONENTS = "etcd,kube-apiserver"
FIRST_PORT_BLOCK = 17443  # 6 consecutive ports per cluster; the shared one uses 16443-16448
FUNCTION_API_TIMEOUT_SECONDS = "5"  # a hung API is answered 503 after this, well within client timeouts


def _ports_free(base: int, count: int = 6) -> bool:
    return not any(port_in_use(port) for port in range(base, base + count))


def free_port_block() -> int:
    """The first base port from 17443 on (in steps of 10) with 6 free ports."""
    for base in range(FIRST_PORT_BLOCK, FIRST_PORT_BLOCK + 1000, 10):
        if _ports_free(base):
            return base
    raise RuntimeError("no block of 6 free ports from 17443 on")


@dataclass(frozen=True)
class FaultCluster:
    """A control plane of its own under ``directory``, driven by ``python -m tests.cluster``."""

    directory: Path
    apiserver_port: int

    @property
    def state_dir(self) -> Path:
        return self.directory / "cluster"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "JOBFN_CLUSTER_DIR": str(self.state_dir),
            "JOBFN_APISERVER_PORT": str(self.apiserver_port),
            "JOBFN_CLUSTER_COMPONENTS": FAULT_COMPONENTS,
        }

    def _cli(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "tests.cluster", *args],
            cwd=ROOT,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"python -m tests.cluster {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout + result.stderr

    def up(self) -> FaultCluster:
        self._cli("up")
        return self

    def down(self) -> None:
        self._cli("down")
        shutil.rmtree(self.directory, ignore_errors=True)

    def stop(self, component: str) -> None:
        """Kill ``component`` (SIGKILL); its data stays."""
        self._cli("stop", component)

    def start(self, component: str) -> None:
        """Start ``component`` again with the same command line and data; returns once it is healthy."""
        self._cli("start", component)

    def pause(self, component: str) -> None:
        self._cli("pause", component)

    def resume(self, component: str) -> None:
        self._cli("resume", component)

    def wait_until_ready(self) -> None:
        self._cli("start", "kube-apiserver")  # a no-op start: waits for /readyz

    def api_client(self, pool_size: int = 16) -> k8s.ApiClient:
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = pool_size
        return k8s.ApiClient(configuration)


@contextmanager
def outage(cluster: FaultCluster, component: str, seconds: float) -> Iterator[None]:
    """``component`` killed for ``seconds``, then started again; the API is ready again afterwards."""
    cluster.stop(component)
    try:
        time.sleep(seconds)  # the fault's length, not a wait for anything
        yield
    finally:
        cluster.start(component)
        cluster.wait_until_ready()


def start_fault_function(
    cluster: FaultCluster,
    namespace: str,
    directory: Path,
    *,
    port: int | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> FunctionServer:
    """The function serving the e2e definitions in ``namespace`` of the fault cluster."""
    definitions = directory / "definitions.yaml"
    if not definitions.exists():
        write_definitions(directory, namespace)
    env = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "JOBFN_API_TIMEOUT_SECONDS": FUNCTION_API_TIMEOUT_SECONDS,
        "JOBFN_LOG_LEVEL": "WARNING",  # 1,000s of access lines would only cost CPU here
        **(extra_env or {}),
    }
    return start_function(namespace, definitions, directory / "function.log", env, port=port)


def peak_rss_kib(server: FunctionServer) -> int:
    """The largest peak RSS (VmHWM) of the function's processes: its gunicorn master and worker."""
    pids = [server.process.pid]
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    try:
        pids += [int(pid) for pid in children.read_text().split()]
    except OSError:
        return 0
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return peak
