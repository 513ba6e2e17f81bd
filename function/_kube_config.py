"""Where the API server is and how to authenticate to it: in-cluster, else a kubeconfig file.

Resolved once, in the order the official client and kubectl use: the pod's
ServiceAccount (``KUBERNETES_SERVICE_HOST``/``_PORT``, its token and CA) unless
``$KUBECONFIG`` is set, else ``$KUBECONFIG`` or ~/.kube/config. Only what an HTTP
client needs is read: the server URL, the CA, a client certificate or a bearer token.
A kubeconfig user that authenticates any other way (an exec plugin, an auth provider,
basic auth) is ``Unsupported`` here, and the boundary hands that file to the official
client's loader instead.
"""

from __future__ import annotations

import base64
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._errors import ConfigurationError
from ._templating import SAFE_LOADER

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: A projected ServiceAccount token is rotated in place; it is re-read this often (as client-go does).
TOKEN_REREAD_SECONDS = 60.0
_USER_KEYS_HANDLED = {"token", "tokenFile", "client-certificate", "client-certificate-data",
                      "client-key", "client-key-data"}  # fmt: skip


class Unsupported(Exception):
    """The kubeconfig authenticates in a way only the official client implements."""


class TokenFile:
    """A bearer token read from a file, re-read every minute (ServiceAccount tokens rotate)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._token = ""
        self._read_at = float("-inf")

    def __call__(self) -> str:
        if time.monotonic() - self._read_at > TOKEN_REREAD_SECONDS:
            with self._lock:
                self._token = self.path.read_text().strip()
                self._read_at = time.monotonic()
        return self._token


@dataclass(frozen=True)
class ClusterAccess:
    """Everything an HTTP client needs to reach and authenticate to one API server."""

    server: str
    """``https://host:port`` (or ``http://``), without a trailing slash."""
    ca_file: str | None = None
    ca_data: str | None = None
    """PEM text of the CA bundle, when the kubeconfig carries it inline."""
    insecure: bool = False
    tls_server_name: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    token_file: TokenFile | None = field(default=None, compare=False)
    authorization_source: Callable[[], str | None] | None = field(default=None, compare=False)
    """The whole Authorization header, asked before each request (the official client's loaders)."""

    def authorization(self) -> str | None:
        """The Authorization header's value, None when the client certificate authenticates."""
        if self.authorization_source is not None:
            return self.authorization_source()
        if self.token_file is not None:
            return f"Bearer {self.token_file()}"
        return f"Bearer {self.token}" if self.token else None


def in_cluster(
    environ: os._Environ[str] | dict[str, str], account_dir: Path = SERVICE_ACCOUNT_DIR
) -> ClusterAccess:
    """The pod's own access: the service's address, its ServiceAccount token and CA."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST", ""), environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigurationError("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set")
    token, ca = account_dir / "token", account_dir / "ca.crt"
    if not token.is_file() or not ca.is_file():
        raise ConfigurationError(f"no ServiceAccount token and CA under {account_dir}")
    host = f"[{host}]" if ":" in host else host  # an IPv6 service address
    return ClusterAccess(server=f"https://{host}:{port}", ca_file=str(ca), token_file=TokenFile(token))


def kubeconfig_path(environ: os._Environ[str] | dict[str, str]) -> Path:
    """The kubeconfig file: ``$KUBECONFIG`` (one file) or ~/.kube/config."""
    value = environ.get("KUBECONFIG", "")
    if os.pathsep in value:
        raise Unsupported("KUBECONFIG lists several files; merging them is the official client's")
    return Path(value).expanduser() if value else Path("~/.kube/config").expanduser()


def _named(entries: Any, name: str, kind: str, path: Path) -> dict[str, Any]:
    for entry in entries or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(kind)
            return value if isinstance(value, dict) else {}
    raise ConfigurationError(f"{path}: no {kind} named {name!r}")


def _inline_file(data: str, suffix: str) -> str:
    """Certificate data written to a private file: Python's TLS loads client keys from files only."""
    handle, name = tempfile.mkstemp(prefix="jobfn-kube-", suffix=suffix)  # mode 0600
    with os.fdopen(handle, "wb") as file:
        file.write(base64.b64decode(data))
    return name


def _relative(path: Path, value: str) -> str:
    """A file named in a kubeconfig is relative to the kubeconfig's folder."""
    return str((path.parent / Path(value).expanduser()).resolve())


def from_kubeconfig(path: Path) -> ClusterAccess:
    """The current context's server and credentials; ``Unsupported`` for other kinds of user."""
    try:
        config = yaml.load(path.read_text(), Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
    except (OSError, yaml.YAMLError) as error:
        raise ConfigurationError(f"cannot read kubeconfig {path}: {error}") from None
    if not isinstance(config, dict):
        raise ConfigurationError(f"{path} is not a kubeconfig")
    context = _named(config.get("contexts"), str(config.get("current-context") or ""), "context", path)
    cluster = _named(config.get("clusters"), str(context.get("cluster") or ""), "cluster", path)
    user = (
        _named(config.get("users"), str(context.get("user") or ""), "user", path)
        if context.get("user")
        else {}
    )
    if set(user) - _USER_KEYS_HANDLED:
        raise Unsupported(f"user authenticates with {sorted(set(user) - _USER_KEYS_HANDLED)}")
    if cluster.get("proxy-url"):
        raise Unsupported("the cluster is reached through a proxy")
    server = str(cluster.get("server") or "").rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise ConfigurationError(f"{path}: the cluster has no https:// server")
    ca_data = cluster.get("certificate-authority-data")
    cert, key = user.get("client-certificate-data"), user.get("client-key-data")
    return ClusterAccess(
        server=server,
        ca_file=_relative(path, cluster["certificate-authority"]) if cluster.get("certificate-authority") else None,
        ca_data=base64.b64decode(ca_data).decode() if ca_data else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
        cert_file=_inline_file(cert, ".crt") if cert else (_relative(path, user["client-certificate"]) if user.get("client-certificate") else None),
        key_file=_inline_file(key, ".key") if key else (_relative(path, user["client-key"]) if user.get("client-key") else None),
        token=user.get("token"),
        token_file=TokenFile(Path(_relative(path, user["tokenFile"]))) if user.get("tokenFile") else None,
    )  # fmt: skip


def from_environment(environ: os._Environ[str] | dict[str, str] | None = None) -> ClusterAccess:
    """In-cluster when running in a pod (and ``$KUBECONFIG`` is unset), else the kubeconfig file."""
    environ = os.environ if environ is None else environ
    if environ.get("KUBERNETES_SERVICE_HOST") and not environ.get("KUBECONFIG"):
        return in_cluster(environ)
    path = kubeconfig_path(environ)
    if not path.is_file():
        raise ConfigurationError(f"no Kubernetes configuration (in-cluster or KUBECONFIG): no file {path}")
    return from_kubeconfig(path)
