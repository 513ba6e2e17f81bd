"""Small helpers shared by the test suites."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


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
