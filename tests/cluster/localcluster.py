"""A local Kubernetes cluster for the test suite: a real node beside KWOK's simulated ones.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run as plain
processes; kwok fakes the nodes annotated for it and their pods' lifecycle (see
kwok-stages.yaml), and those nodes are tainted so only pods that opt in land there.
The real node (node.py: containerd, kubelet, kube-proxy, CoreDNS) runs real containers.
All of it shares one network namespace of its own (netns.py), reached from the host at
https://127.0.0.1:<apiserver port> through a relay. Processes are detached, so one
cluster serves many test runs.

Public API: ensure_running(), stop(), is_running(), status(), kubeconfig_path(),
kubectl_path(), bin_dir(), containerd_address(), in_cluster_network() (sockets inside, to
reach ClusterIPs and pods); for fault tests, stop_component(),
start_component(), pause_component() and resume_component(). Everything lives under
$JOBFN_CACHE/cluster/.

A second, independent cluster (the fault tests stop and restart its components) runs
with its own state dir and ports: ``JOBFN_CLUSTER_DIR`` (its lock is ``<dir>.lock``),
``JOBFN_APISERVER_PORT`` (6 consecutive ports from there) and, for a cluster of etcd
and kube-apiserver alone, ``JOBFN_CLUSTER_COMPONENTS=etcd,kube-apiserver``. The built
binaries are shared. A cluster without the node's components stays on the host's
loopback, without a namespace or relay.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from tests.cluster import controlplane, netns, node, pki
from tests.cluster.controlplane import Ports

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"

# Start order; stop goes in reverse.
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE_COMPONENTS = ("containerd", "kubelet", "kube-proxy", "coredns")
COMPONENTS = (*CONTROL_PLANE, *NODE_COMPONENTS)
REQUIRED_COMPONENTS = ("etcd", "kube-apiserver")
# The relay's two socat processes (see netns.py), tracked like components.
RELAYS = ("relay-inside", "relay-host")
# process name -> (binary, prefix of its first argument) where the name is not the binary's
PROCESS_SIGNATURES = {"relay-inside": ("socat", "UNIX-LISTEN:"), "relay-host": ("socat", "TCP-LISTEN:")}
NODE_PREFIX = "kwok-node-"
FUNCTION_PORT = 8080  # the function under test listens there; never take it


class ClusterError(RuntimeError):
    """The local cluster could not be started or reached."""


# --- paths -----------------------------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get("JOBFN_CACHE") or Path.home() / ".cache" / "jobfn")


def state_dir() -> Path:
    given = os.environ.get("JOBFN_CLUSTER_DIR")
    return Path(given).resolve() if given else cache_dir() / "cluster"


def components() -> tuple[str, ...]:
    """The components this cluster runs, in start order (``JOBFN_CLUSTER_COMPONENTS``, default all)."""
    given = os.environ.get("JOBFN_CLUSTER_COMPONENTS")
    if not given:
        return COMPONENTS
    wanted = {name.strip() for name in given.split(",") if name.strip()}
    unknown = wanted - set(COMPONENTS)
    missing = set(REQUIRED_COMPONENTS) - wanted
    if wanted & set(NODE_COMPONENTS):  # the node is all of them or none
        missing |= set(NODE_COMPONENTS) - wanted
    if unknown or missing:
        raise ClusterError(
            f"JOBFN_CLUSTER_COMPONENTS={given!r}: unknown {sorted(unknown)}, missing {sorted(missing)}; "
            f"choose from {', '.join(COMPONENTS)} (etcd and kube-apiserver are always needed, "
            f"{', '.join(NODE_COMPONENTS)} go together)"
        )
    return tuple(name for name in COMPONENTS if name in wanted)


def has_node() -> bool:
    """Whether this cluster runs the real node (and so lives in its own network namespace)."""
    return "kubelet" in components()


def netns_name() -> str:
    return netns.name_for(state_dir())


def containerd_address() -> Path:
    """containerd's socket, for importing images (namespace k8s.io is the kubelet's)."""
    return node.containerd_socket(state_dir())


def kubeconfig_path() -> Path:
    """Admin kubeconfig (client cert in group system:masters)."""
    return state_dir() / "kubeconfig"


def _pki(name: str) -> Path:
    return state_dir() / "pki" / name


def _log_path(component: str) -> Path:
    return state_dir() / "logs" / f"{component}.log"


def _pid_path(component: str) -> Path:
    return state_dir() / "pids" / f"{component}.pid"


def _node_names() -> list[str]:
    count = int(os.environ.get("JOBFN_KWOK_NODES", "1"))
    return [f"{NODE_PREFIX}{i}" for i in range(count)]


def _start_timeout() -> float:
    return float(os.environ.get("JOBFN_CLUSTER_START_TIMEOUT", "120"))


@functools.cache
def bin_dir() -> Path:
    """Directory with the built binaries; runs build.sh (a no-op once built)."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )  # build progress goes to our stderr
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ClusterError(f"{BUILD_SCRIPT} failed (exit {result.returncode})")
    return Path(lines[-1])


def kubectl_path() -> Path:
    return bin_dir() / "kubectl"


# --- processes -------------------------------------------------------------


def _read_pid(component: str) -> int | None:
    try:
        return int(_pid_path(component).read_text().strip())
    except (OSError, ValueError):
        return None


def _is_component_process(pid: int, component: str) -> bool:
    """True if pid is alive and runs the component's binary (guards against stale pid files)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    binary, first_arg = PROCESS_SIGNATURES.get(component, (component, ""))
    first = argv[1] if len(argv) > 1 else ""
    return state not in ("Z", "X") and Path(argv[0]).name == binary and first.startswith(first_arg)


def _find_by_state_dir(component: str) -> int | None:
    """A component process whose command line names our state dir, for lost pid files."""
    marker = f"{state_dir()}/".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (proc / "cmdline").read_bytes() and _is_component_process(int(proc.name), component):
                return int(proc.name)
    return None


def running_pid(component: str) -> int | None:
    """pid of the component of this cluster, from its pid file, else found by its state dir."""
    pid = _read_pid(component)
    if pid is not None and _is_component_process(pid, component):
        return pid
    return _find_by_state_dir(component)


def _spawn_detached(component: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    """Start argv in the background, logging to its log file; returns its pid.

    A short-lived shell launches it, so the component is re-parented to init: it
    outlives this process (own session) and never lingers here as a child. With a real
    node, everything but the relay's host end runs in the cluster's network namespace.
    """
    if has_node() and component != "relay-host":
        argv = [*netns.enter_argv(netns_name()), *argv]
    log = _log_path(component)
    with log.open("ab") as out:
        out.write(f"\n=== {time.strftime('%F %T')} {' '.join(argv)}\n".encode())
        out.flush()
        shell = subprocess.run(
            ["/bin/sh", "-c", '"$@" </dev/null >&2 & echo $!', "sh", *argv],
            stdout=subprocess.PIPE,
            stderr=out,
            cwd=state_dir(),
            env=env,
            start_new_session=True,
            check=True,
            text=True,
        )
    pid = int(shell.stdout.strip())
    _pid_path(component).write_text(f"{pid}\n")
    # Until the forked shell has exec'd, /proc shows "sh": wait so liveness checks are exact.
    deadline = time.monotonic() + 5
    while not _is_component_process(pid, component) and Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return pid


def _terminate(components: list[str], grace: float = 2.0) -> None:
    """SIGTERM our own component processes, then SIGKILL whatever outlives the grace period.

    The grace is short on purpose: the state is thrown away anyway, and the apiserver
    and etcd take 10 s+ to shut down gracefully.
    """
    pids = {c: pid for c in components if (pid := running_pid(c)) is not None}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = {c: p for c, p in pids.items() if _is_component_process(p, c)}


def log_tail(component: str, lines: int = 40) -> str:
    try:
        text = _log_path(component).read_text(errors="replace")
    except OSError:
        return f"(no log at {_log_path(component)})"
    return "\n".join(text.splitlines()[-lines:])


def _failure(component: str, message: str) -> ClusterError:
    return ClusterError(
        f"{component}: {message}\n--- last lines of {_log_path(component)} ---\n{log_tail(component)}"
    )


def _wait_until(component: str, what: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll check() until true; fail fast, with the log tail, if the component dies."""
    deadline = time.monotonic() + timeout
    while not check():
        if running_pid(component) is None:
            raise _failure(component, f"exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise _failure(component, f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        # Same option as Go listeners, so sockets in TIME_WAIT don't count as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _check_ports(ports: Ports) -> None:
    owners = ports.by_component()
    if FUNCTION_PORT in owners.values():
        raise ClusterError(f"JOBFN_APISERVER_PORT puts a cluster port on {FUNCTION_PORT}; pick another")
    if has_node():  # only the relay listens on the host; the rest is in the cluster's namespace
        owners = {"kube-apiserver (relay)": ports.apiserver}
    busy = [f"{port} ({name})" for name, port in owners.items() if port_in_use(port)]
    if busy:
        raise ClusterError(
            f"ports already in use on 127.0.0.1: {', '.join(busy)}. Another cluster or program holds them "
            "(see `ss -ltnp`); stop it or set JOBFN_APISERVER_PORT (6 consecutive ports are used)."
        )


# --- HTTP checks against the components ------------------------------------


def _admin_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(_pki("ca.crt")))
    context.load_cert_chain(str(_pki("admin.crt")), str(_pki("admin.key")))
    return context


def _http(url: str, *, method: str = "GET", body: Any = None, timeout: float = 5) -> tuple[int, Any]:
    """(status, parsed JSON or text); status 0 when nothing answered."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    context = _admin_tls() if url.startswith("https") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    except (OSError, ssl.SSLError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def _api(path: str, **kwargs: Any) -> tuple[int, Any]:
    """A call to the apiserver from the host (through the relay, with a real node)."""
    return _http(f"https://127.0.0.1:{Ports.from_env().apiserver}{path}", **kwargs)


_inside: dict[tuple[str, int], netns.Inside] = {}


def in_cluster_network(function: Callable[[], T]) -> T:
    """Run ``function`` with its sockets where the components listen: the cluster's network
    namespace (pod IPs and ClusterIPs reachable, as on the node), else the host.

    Calls run one at a time, on one thread joined to the namespace.
    """
    if not has_node():
        return function()
    name = netns_name()
    key = (name, netns.path(name).stat().st_ino)  # a namespace made again is a new one
    if key not in _inside:
        _inside[key] = netns.Inside(name)
    return _inside[key].call(function)


def _healthy_at(url: str) -> Callable[[], bool]:
    return lambda: in_cluster_network(lambda: _http(url))[0] == 200


def _node_ready(name: str) -> bool:
    status, node = _api(f"/api/v1/nodes/{name}")
    if status != 200:
        return False
    conditions = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _nodes_ready() -> bool:
    """The KWOK nodes and, with a real node, that one too."""
    names = _node_names() if "kwok" in components() else []
    return all(_node_ready(name) for name in [*names, *([node.NODE_NAME] if has_node() else [])])


def _default_service_account() -> bool:
    return _api("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200


def _create_nodes(ports: Ports) -> None:
    for name in _node_names():
        status, body = _api(
            "/api/v1/nodes", method="POST", body=controlplane.kwok_node_manifest(name, ports.kwok)
        )
        if status not in (201, 409):
            raise ClusterError(f"creating node {name} failed: HTTP {status} {body}")


# --- lifecycle ---------------------------------------------------------------


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Held by one process of the machine at a time (parallel test sessions, CLIs, installers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _lock() -> contextlib.AbstractContextManager[None]:
    """Serialise up/down across processes; one lock per state dir."""
    return file_lock(state_dir().with_name(state_dir().name + ".lock"))  # beside it: survives its removal


def _start() -> None:
    ports, bins, timeout = Ports.from_env(), bin_dir(), _start_timeout()
    if has_node():
        node.ensure_packages()
    _check_ports(ports)
    for sub in ("pki", "logs", "pids", "relay"):
        (state_dir() / sub).mkdir(parents=True, exist_ok=True)
    began = time.monotonic()

    def wait(component: str, what: str, check: Callable[[], bool]) -> None:
        _wait_until(component, what, check, timeout)
        print(f"[cluster] {component}: {what} ({time.monotonic() - began:.1f}s)", file=sys.stderr)

    def local(port: int, path: str, scheme: str = "https") -> Callable[[], bool]:
        return _healthy_at(f"{scheme}://127.0.0.1:{port}{path}")

    def prepare_images() -> None:
        wait("containerd", "serving", lambda: node.containerd_serving(state_dir()))
        _import_images()

    wanted = components()
    if has_node():
        netns.create(netns_name(), controlplane.SERVICE_CIDR)
        node.prepare_host(state_dir())
    _spawn_detached("etcd", _argv("etcd", bins, ports))  # needs no certificates: boots meanwhile
    pki.make_pki(_pki(""), netns.NODE_IP if has_node() else None, node.NODE_NAME)
    server = f"https://127.0.0.1:{ports.apiserver}"
    users = ["kube-controller-manager", "kube-scheduler", "kwok"]
    for user in [*users, *(pki.NODE_CLIENTS if has_node() else ())]:
        pki.write_kubeconfig(state_dir() / f"{user}.kubeconfig", _pki(""), user, server)
    with ThreadPoolExecutor(max_workers=1) as background:
        images_imported = None
        if has_node():  # containerd and its images need nothing from the API: they get ready meanwhile
            node.write_configs(state_dir(), _pause_image(), _image_store())
            _spawn_detached("containerd", node.containerd_argv(state_dir(), bins))
            images_imported = background.submit(prepare_images)
        wait("etcd", "healthy", local(ports.etcd, "/health", "http"))
        _spawn_detached("kube-apiserver", _argv("kube-apiserver", bins, ports))
        if has_node():
            for relay in RELAYS:
                _spawn_detached(relay, _argv(relay, bins, ports))
        wait("kube-apiserver", "ready", local(ports.apiserver, "/readyz"))
        if has_node():
            wait("relay-host", "apiserver reachable from the host", lambda: _api("/readyz")[0] == 200)
        if "kwok" in wanted:
            _create_nodes(ports)
        for component in ("kube-controller-manager", "kube-scheduler", "kwok"):
            if component in wanted:
                _spawn_detached(component, _argv(component, bins, ports), env=_env(component))
        if has_node():
            for component in ("kubelet", "kube-proxy", "coredns"):
                _spawn_detached(component, _argv(component, bins, ports))
        if "kube-controller-manager" in wanted:
            wait("kube-controller-manager", "healthy", local(ports.controller_manager, "/healthz"))
        if "kube-scheduler" in wanted:
            wait("kube-scheduler", "healthy", local(ports.scheduler, "/healthz"))
        if "kwok" in wanted:
            wait("kwok", "healthy", local(ports.kwok, "/healthz"))
        if has_node():
            wait("kubelet", "healthy", _health_check("kubelet", ports))
        if "kwok" in wanted or has_node():
            wait("kwok" if "kwok" in wanted else "kubelet", "node(s) Ready", _nodes_ready)
        if has_node():
            wait("kube-proxy", "healthy", _health_check("kube-proxy", ports))
            wait("coredns", "ready", _health_check("coredns", ports))
        if "kube-controller-manager" in wanted:
            wait("kube-controller-manager", "default ServiceAccount created", _default_service_account)
        if images_imported is not None:
            images_imported.result()
    # Published last: its presence means the cluster came up completely.
    pki.write_kubeconfig(kubeconfig_path(), _pki(""), "admin", server)


def _image_store() -> Path:
    """containerd's root for this cluster: kept across `down`, so a warm `up` imports nothing."""
    return cache_dir() / "containerd" / netns_name()


def _pause_image() -> str:
    from tests.cluster import images  # it imports this module: not at the top

    return images.PAUSE_IMAGE


def _import_images() -> None:
    """The images pods run (pause, busybox, the project's): built once per machine, imported into the node's containerd."""
    from tests.cluster import images

    began = time.monotonic()
    images.ensure_images(containerd_address())
    print(f"[cluster] images imported ({time.monotonic() - began:.1f}s)", file=sys.stderr)


def _healthy() -> bool:
    wanted = [*components(), *(RELAYS if has_node() else ())]
    if not kubeconfig_path().exists() or any(running_pid(c) is None for c in wanted):
        return False
    return _api("/readyz")[0] == 200 and _nodes_ready()


def _teardown() -> None:
    """Stop every process of this cluster; with a node, also its pods, mounts and namespace. Keeps the files."""
    _terminate(["coredns", "kube-proxy", "kubelet"])  # first, so nothing restarts the pods
    node.kill_pods(state_dir())
    _terminate([*reversed(CONTROL_PLANE), "containerd", *RELAYS])
    node.unmount_all(state_dir())
    for key in [key for key in _inside if key[0] == netns_name()]:
        _inside.pop(key).close()
    netns.delete(netns_name())


def _stop_unlocked() -> None:
    _teardown()
    shutil.rmtree(state_dir(), ignore_errors=True)


def is_running() -> bool:
    """All components alive, apiserver ready (from the host) and the node(s) Ready."""
    return state_dir().exists() and _pki("admin.crt").exists() and _healthy()


def ensure_running() -> Path:
    """Start the cluster unless it is already up and healthy; returns the kubeconfig path."""
    with _lock():
        if is_running():
            if has_node():  # a cluster started before the Service route existed gets it too
                netns.route_services(netns_name(), controlplane.SERVICE_CIDR)
            return kubeconfig_path()
        bin_dir()  # build (or find) the binaries before touching a running cluster's state
        _stop_unlocked()  # leftovers of a crashed or partial cluster, stale pid files
        try:
            _start()
        except BaseException:
            print(f"cluster start failed; logs kept in {state_dir() / 'logs'}", file=sys.stderr)
            _teardown()
            raise
    return kubeconfig_path()


def stop() -> None:
    """Stop every component and pod, remove the cluster state (certs, etcd data, logs, containerd), mounts and namespace."""
    with _lock():
        _stop_unlocked()


def status() -> dict[str, int | None]:
    """pid of each component of this cluster (None when not running)."""
    return {component: running_pid(component) for component in components()}


# --- faults: one component stopped, started, paused ---------------------------------------


def _argv(component: str, bins: Path, ports: Ports) -> list[str]:
    state = state_dir()
    if component == "kube-apiserver":
        return controlplane.apiserver_argv(state, bins, ports, in_netns=has_node())
    builders = {
        "etcd": controlplane.etcd_argv,
        "kube-controller-manager": controlplane.controller_manager_argv,
        "kube-scheduler": controlplane.scheduler_argv,
        "kwok": controlplane.kwok_argv,
    }
    if component in RELAYS:
        relay = netns.relay_inside_argv if component == "relay-inside" else netns.relay_host_argv
        return relay(state_dir(), ports.apiserver)
    node_builders = {
        "containerd": node.containerd_argv,
        "kubelet": node.kubelet_argv,
        "kube-proxy": node.kube_proxy_argv,
        "coredns": node.coredns_argv,
    }
    if component in node_builders:
        return node_builders[component](state_dir(), bins)
    return builders[component](state, bins, ports)


def _env(component: str) -> dict[str, str] | None:
    return controlplane.kwok_env(state_dir()) if component == "kwok" else None


def _health_check(component: str, ports: Ports) -> Callable[[], bool]:
    node_checks = {
        "containerd": lambda: node.containerd_serving(state_dir()),
        "kubelet": _healthy_at(f"http://127.0.0.1:{node.KUBELET_HEALTHZ_PORT}/healthz"),
        "kube-proxy": _healthy_at(f"http://127.0.0.1:{node.PROXY_HEALTHZ_PORT}/healthz"),
        "coredns": _healthy_at(f"http://127.0.0.1:{node.COREDNS_READY_PORT}/ready"),
    }
    if component in node_checks:
        return node_checks[component]
    if component == "etcd":
        return _healthy_at(f"http://127.0.0.1:{ports.etcd}/health")
    path = "/readyz" if component == "kube-apiserver" else "/healthz"
    return _healthy_at(f"https://127.0.0.1:{ports.by_component()[component]}{path}")


def _check_component(component: str) -> None:
    if component not in components():
        raise ClusterError(f"{component!r} is not a component of this cluster ({', '.join(components())})")


def stop_component(component: str, sig: signal.Signals = signal.SIGKILL) -> None:
    """Stop one component (SIGKILL by default: a crash) and wait until it is gone; state is kept."""
    _check_component(component)
    pid = running_pid(component)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)  # a paused process would hold a SIGTERM until resumed
        os.kill(pid, sig)
    deadline = time.monotonic() + 30
    while _is_component_process(pid, component):
        if time.monotonic() > deadline:
            raise ClusterError(f"{component} (pid {pid}) still running 30 s after {sig.name}")
        time.sleep(0.05)


def start_component(component: str) -> float:
    """Start a stopped component again, with the same command line and data; seconds until healthy."""
    _check_component(component)
    ports, began = Ports.from_env(), time.monotonic()
    if running_pid(component) is None:
        _spawn_detached(component, _argv(component, bin_dir(), ports), env=_env(component))
    _wait_until(component, "healthy", _health_check(component, ports), _start_timeout())
    return time.monotonic() - began


def pause_component(component: str) -> None:
    """Freeze one component (SIGSTOP): connections stay open and requests hang, unanswered."""
    _signal_component(component, signal.SIGSTOP)


def resume_component(component: str) -> None:
    """Let a paused component run again (SIGCONT)."""
    _signal_component(component, signal.SIGCONT)


def _signal_component(component: str, sig: signal.Signals) -> None:
    _check_component(component)
    pid = running_pid(component)
    if pid is None:
        raise ClusterError(f"{component} is not running")
    os.kill(pid, sig)
