"""The local cluster's certificates (openssl CLI) and kubeconfigs.

One CA signs everything: a serving certificate shared by every local server, and one
client certificate per component (its user and groups in the subject).
"""

from __future__ import annotations

import base64
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# name -> subject of each client certificate (CN is the user, O the group)
CLIENTS = {
    "admin": "/O=system:masters/CN=jobfn-admin",
    "kube-controller-manager": "/CN=system:kube-controller-manager",
    "kube-scheduler": "/CN=system:kube-scheduler",
    # kwok patches node/pod status, deletes pods, renews leases: admin rights keep it simple.
    "kwok": "/O=system:masters/CN=kwok-controller",
    "apiserver-kubelet-client": "/O=system:masters/CN=kube-apiserver-kubelet-client",
    "front-proxy-client": "/CN=front-proxy-client",
}
# The real node's clients: the Node authorizer and the bootstrap RBAC roles know these users.
NODE_CLIENTS = {
    "kubelet": "/O=system:nodes/CN=system:node:{node}",
    "kube-proxy": "/CN=system:kube-proxy",
    # CoreDNS watches Services, EndpointSlices and Namespaces cluster-wide; no bootstrap role has just that.
    "coredns": "/O=system:masters/CN=coredns",
}


class PkiError(RuntimeError):
    """openssl failed."""


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def _make_cert(pki: Path, name: str, subject: str, extensions: list[str], signed: bool = True) -> None:
    """EC key <name>.key and certificate <name>.crt, CA-signed unless signed=False (the CA)."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    args = ["req", "-x509", "-config", str(pki / "openssl.cnf"), *key, "-days", "3650", "-subj", subject]
    args += ["-keyout", str(pki / f"{name}.key"), "-out", str(pki / f"{name}.crt")]
    if signed:
        args += ["-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key")]
    for extension in extensions:
        args += ["-addext", extension]
    _openssl(*args)


def _make_service_account_key(pki: Path) -> None:
    # RSA, as RS256 is what every JWT consumer supports.
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(pki / "sa.key"))
    _openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def make_pki(pki: Path, node_ip: str | None, node_name: str) -> None:
    """CA, serving cert, client certs and the ServiceAccount key; the node's too when node_ip is given."""
    pki.mkdir(parents=True, exist_ok=True)
    # A minimal config: the default one adds CA extensions to every `req -x509` certificate.
    (pki / "openssl.cnf").write_text("[req]\ndistinguished_name = dn\n[dn]\n")
    _make_cert(
        pki,
        "ca",
        "/CN=jobfn-local-ca",
        ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"],
        signed=False,
    )
    sans = "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default"
    sans += ",DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    if node_ip:  # the kubelet serves with this certificate too, at the node's address
        sans += f",IP:{node_ip},DNS:{node_name}"
    leaf = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
    client = [*leaf, "extendedKeyUsage=clientAuth"]
    certs = {
        "serving": (
            "/CN=jobfn-local-serving",
            [*leaf, "extendedKeyUsage=serverAuth", f"subjectAltName={sans}"],
        )
    }
    certs.update({name: (subject, client) for name, subject in CLIENTS.items()})
    if node_ip:
        certs.update(
            {name: (subject.format(node=node_name), client) for name, subject in NODE_CLIENTS.items()}
        )
    # openssl runs are independent; in parallel they cost ~one process start instead of a dozen.
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(_make_cert, pki, name, subject, ext) for name, (subject, ext) in certs.items()]
        futures.append(pool.submit(_make_service_account_key, pki))
        for future in futures:
            future.result()


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, pki: Path, user: str, server: str) -> None:
    """A self-contained kubeconfig (JSON is valid YAML); written atomically."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "jobfn-local",
                "cluster": {"server": server, "certificate-authority-data": _b64(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(pki / f"{user}.crt"),
                    "client-key-data": _b64(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "jobfn-local", "context": {"cluster": "jobfn-local", "user": user}}],
        "current-context": "jobfn-local",
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
