"""The local cluster's own network namespace, and the loopback relay that reaches it.

Every component with a real node (control plane, kwok, containerd, kubelet, kube-proxy,
CoreDNS) runs in one network namespace made here, so pod networking, iptables rules and
the apiserver's calls to the kubelet never touch the host's network and no packet leaves
the machine. The host reaches the apiserver at the usual ``https://127.0.0.1:<port>``
through a relay: a socat in the namespace accepts on a unix socket under the state dir
(path sockets are not namespaced) and dials the apiserver, and a socat on the host
listens on 127.0.0.1:<port> and dials that socket.

Inside, the loopback interface also holds ``NODE_IP``, the address the apiserver
advertises and the kubelet serves on (pods reach it through their bridge's gateway);
the default route is a blackhole, so anything addressed elsewhere is dropped inside the
namespace instead of leaving it. (This kernel has no dummy interfaces.) The Service range
is routed to loopback from ``NODE_IP``: as on a node whose default route covers it, a
process here (a test, a health check) reaches a ClusterIP, which kube-proxy's OUTPUT
rules translate to a pod or to the apiserver; an address without a Service stays here.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

NODE_IP = "10.200.0.1"  # exists only inside the cluster's namespace
NETNS_DIR = Path("/var/run/netns")
CLONE_NEWNET = 0x40000000

T = TypeVar("T")


class NetnsError(RuntimeError):
    """A namespace command failed."""


def name_for(state_dir: Path) -> str:
    """Namespace name derived from the state dir, so two clusters never share one."""
    return "jobfn-" + hashlib.sha256(str(state_dir).encode()).hexdigest()[:10]


def path(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return path(name).exists()


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


def create(name: str, service_cidr: str) -> None:
    """A fresh namespace: lo up with NODE_IP too, a blackhole default route, the Service range routed."""
    _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")
    _ip("-n", name, "addr", "add", f"{NODE_IP}/32", "dev", "lo")
    _ip("-n", name, "route", "add", "blackhole", "default")
    route_services(name, service_cidr)


def route_services(name: str, service_cidr: str) -> None:
    """Route ClusterIPs (idempotent). Without it, connecting to one fails with EINVAL (the
    blackhole) before kube-proxy's DNAT could apply; from NODE_IP, not 127.0.0.1, since the
    answer comes back from a pod over the bridge."""
    _ip("-n", name, "route", "replace", service_cidr, "dev", "lo", "src", NODE_IP)


def delete(name: str) -> None:
    if exists(name):
        _ip("netns", "delete", name)


def enter_argv(name: str) -> list[str]:
    """Prefix that runs a command in the namespace.

    nsenter, not `ip netns exec`: the latter remounts /sys, which hides the cgroup
    mounts from runc and the kubelet.
    """
    return ["nsenter", f"--net={path(name)}", "--"]


def relay_socket(state_dir: Path, port: int) -> Path:
    return state_dir / "relay" / f"{port}.sock"


def relay_inside_argv(state_dir: Path, port: int) -> list[str]:
    """socat in the namespace: unix socket -> 127.0.0.1:port there."""
    sock = relay_socket(state_dir, port)
    return ["socat", f"UNIX-LISTEN:{sock},fork,unlink-early", f"TCP:127.0.0.1:{port},nodelay"]


def relay_host_argv(state_dir: Path, port: int) -> list[str]:
    """socat on the host: 127.0.0.1:port -> the unix socket."""
    sock = relay_socket(state_dir, port)
    # nodelay on both TCP legs: with Nagle, a new connection's first answer waited for a
    # delayed ACK (~40 ms) in 6 of 10 tries, time no real cluster's client spends.
    return ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,nodelay", f"UNIX-CONNECT:{sock}"]


class Inside:
    """Runs Python callables with their sockets in a namespace (worker threads joined to it).

    A network namespace is per thread on Linux, so only the workers move; the caller's
    sockets stay on the host. Used for health checks of components that listen on the
    namespace's loopback, and (with many workers) for concurrent clients of in-cluster
    Services.
    """

    def __init__(self, name: str, workers: int = 1) -> None:
        self._name = name
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=workers, initializer=self._join)

    def _join(self) -> None:
        self._local.joined = True
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path(self._name), os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise NetnsError(f"setns {self._name}: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(fd)

    def call(self, function: Callable[[], T]) -> T:
        if getattr(self._local, "joined", False):  # already on a worker: waiting on another could deadlock
            return function()
        return self._pool.submit(function).result()

    def submit(self, function: Callable[[], T]) -> Future[T]:
        """Start ``function`` on a free worker; its result comes later."""
        return self._pool.submit(function)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
