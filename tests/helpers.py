"""Small helpers shared by the test suites: waiting, kubectl, namespaces, the function as a process."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from kubernetes import client

from tests.cluster.controlplane import KWOK_NODE_LABELS, SIMULATED_TAINT

ROOT = Path(__file__).resolve().parents[1]
TEST_NAMESPACE_LABEL = "jobfn-test"
FUNCTION_SIGNATURE = "jobfn-e2e"
FUNCTION_READY_TIMEOUT = 60.0

# Pod spec fields that put a pod on a KWOK node, simulated there (the jobfn.test/* annotations
# script it); a pod without them runs real containers on the real node. In YAML:
#   nodeSelector: {type: kwok}
#   tolerations: [{key: jobfn.dev/simulated, operator: Exists, effect: NoSchedule}]
SIMULATED_NODE: dict[str, Any] = {
    "nodeSelector": KWOK_NODE_LABELS,
    "tolerations": [
        {"key": SIMULATED_TAINT["key"], "operator": "Exists", "effect": SIMULATED_TAINT["effect"]}
    ],
}

T = TypeVar("T")
Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


def on_simulated_node(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """``pod_spec`` with SIMULATED_NODE's fields added (a new dict)."""
    return {**pod_spec, **copy.deepcopy(SIMULATED_NODE)}


def wait_for(
    check: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.2, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout} s (last value: {last!r})")


def write_token_kubeconfig(path: Path, configuration: Any, token: str, user: str = "token") -> Path:
    """A kubeconfig at ``path`` that reaches the API server of ``configuration`` (a kubernetes
    client ``Configuration``: server and CA) with ``token`` alone, no client certificate.

    A kubeconfig carrying both would authenticate as the certificate's user, so a
    ServiceAccount's token is only really tested through one like this.
    """
    cluster: dict[str, str] = {"server": configuration.host}
    if configuration.ssl_ca_cert:
        cluster["certificate-authority"] = str(configuration.ssl_ca_cert)
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "cluster", "user": user}}],
        "current-context": user,
    }
    path.write_text(json.dumps(document))  # JSON is YAML; no yaml dependency here
    path.chmod(0o600)
    return path


def kubectl_runner(binary: Path, kubeconfig: Path, timeout: float = 120) -> Kubectl:
    """kubectl under ``kubeconfig``: run("get", "pods", input=None, check=True) -> CompletedProcess."""

    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(binary), f"--kubeconfig={kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    return run


def create_namespace(api_client: client.ApiClient, hint: str, wait_for_service_account: bool = True) -> str:
    """A fresh namespace labelled jobfn-test=true, named after ``hint``.

    Pods are refused until the controller-manager has created the namespace's "default"
    ServiceAccount, so that is awaited unless the cluster runs no controller-manager.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TEST_NAMESPACE_LABEL: "true"}))
    )
    if wait_for_service_account:
        wait_for(
            lambda: core.list_namespaced_service_account(name, field_selector="metadata.name=default").items,
            timeout=30,
            what=f"the default ServiceAccount in {name}",
        )
    return name


# --- the function as a real server process ------------------------------------------------
@dataclass
class FunctionServer:
    """A running function process (a gunicorn master and its worker, in their own session)."""

    url: str
    namespace: str
    process: subprocess.Popen[bytes]
    log_path: Path
    seconds_to_ready: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the master and its worker at once, as a node losing the pod would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def functions_framework_command() -> str:
    beside_python = Path(sys.executable).parent / "functions-framework"
    return str(beside_python) if beside_python.exists() else "functions-framework"


def start_function(
    namespace: str,
    definitions: Path,
    log_path: Path,
    extra_env: Mapping[str, str] | None = None,
    ready_path: str = "/readyz",
    port: int | None = None,
    in_cluster: bool = False,
) -> FunctionServer:
    """Start the function and wait until ``ready_path`` answers 200 (or fail with its log).

    ``port`` restarts a function where its clients already send (default: a free port).
    The log is appended to, so a restarted function's log follows its predecessor's.
    ``in_cluster``: in the local cluster's network namespace, where pods reach the node's
    address and the process reaches ClusterIPs (its URL is only reachable from there too).
    """
    from tests.cluster import localcluster, netns

    def probe(url: str) -> int:
        call = lambda: requests.get(url, timeout=30).status_code  # noqa: E731
        return localcluster.in_cluster_network(call) if in_cluster else call()

    port = port or (localcluster.in_cluster_network(free_port) if in_cluster else free_port())
    env = {
        **os.environ,
        "JOB_NAMESPACE": namespace,
        "JOB_SIGNATURE": FUNCTION_SIGNATURE,
        "JOB_DEFINITIONS_CONFIG_PATH": str(definitions),
        "JOBFN_RELOAD_INTERVAL_SECONDS": "0.2",
        "JOBFN_AUTH": "none",
        "THREADS": "8",
        **(extra_env or {}),
    }
    started = time.monotonic()
    source = str(ROOT / "function" / "main.py")
    command = [functions_framework_command(), "--target", "handle", "--source", source]
    if in_cluster:
        command = ["nsenter", f"--net={netns.path(localcluster.netns_name())}", *command]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
            start_new_session=True,  # its own process group: kill() takes the worker too
        )
    server = FunctionServer(f"http://127.0.0.1:{port}", namespace, process, log_path, env=env)
    deadline = started + FUNCTION_READY_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the function exited with {process.returncode}:\n{server.log()[-4000:]}")
        try:
            if probe(server.url + ready_path) == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(
                f"{ready_path} not ready after {FUNCTION_READY_TIMEOUT} s:\n{server.log()[-4000:]}"
            )
        time.sleep(0.05)
    server.seconds_to_ready = time.monotonic() - started
    return server


def install_missing_debian_packages(packages: Mapping[str, str]) -> None:
    """apt-get install the package of each command (``{command: package}``) that is not on PATH,
    so `make test` works on a fresh machine as .ci/run does."""
    import shutil

    missing = sorted({package for command, package in packages.items() if shutil.which(command) is None})
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        subprocess.run(argv, env=env, check=True)
