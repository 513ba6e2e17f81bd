"""Where the API server is and how to authenticate: the pod's ServiceAccount, else a kubeconfig."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from jobfn._errors import ConfigurationError
from jobfn._kube_config import Unsupported, from_environment, from_kubeconfig, in_cluster


def _kubeconfig(path: Path, user: dict[str, object], cluster: dict[str, object] | None = None) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "here",
        "contexts": [{"name": "other", "context": {"cluster": "x", "user": "x"}},
                     {"name": "here", "context": {"cluster": "local", "user": "admin"}}],
        "clusters": [{"name": "local", "cluster": cluster or {
            "server": "https://127.0.0.1:6443/", "certificate-authority-data": base64.b64encode(b"CA PEM").decode()}}],
        "users": [{"name": "admin", "user": user}],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_current_contexts_client_certificate_is_read(tmp_path: Path) -> None:
    user = {"client-certificate-data": base64.b64encode(b"CERT").decode(), "client-key": "keys/admin.key"}
    access = from_kubeconfig(_kubeconfig(tmp_path / "config", user))

    assert access.server == "https://127.0.0.1:6443"
    assert access.ca_data == "CA PEM"
    assert access.cert_file is not None
    assert Path(access.cert_file).read_bytes() == b"CERT"
    assert Path(access.cert_file).stat().st_mode & 0o077 == 0  # the key material stays private
    assert access.key_file == str(tmp_path / "keys" / "admin.key")  # relative to the kubeconfig
    assert access.authorization() is None


def test_a_token_and_a_token_file_become_the_bearer_header(tmp_path: Path) -> None:
    assert from_kubeconfig(_kubeconfig(tmp_path / "a", {"token": "abc"})).authorization() == "Bearer abc"
    (tmp_path / "token").write_text("from-file\n")
    access = from_kubeconfig(_kubeconfig(tmp_path / "b", {"tokenFile": "token"}))
    assert access.authorization() == "Bearer from-file"


@pytest.mark.parametrize(
    "user", [{"exec": {"command": "get-token"}}, {"auth-provider": {"name": "oidc"}}, {"username": "u"}]
)
def test_other_authentication_is_left_to_the_official_client(tmp_path: Path, user: dict[str, object]) -> None:
    with pytest.raises(Unsupported):
        from_kubeconfig(_kubeconfig(tmp_path / "config", user))


def test_a_missing_or_broken_kubeconfig_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no Kubernetes configuration"):
        from_environment({"KUBECONFIG": str(tmp_path / "missing")})
    (tmp_path / "broken").write_text("current-context: nowhere\n")
    with pytest.raises(ConfigurationError, match="no context named 'nowhere'"):
        from_environment({"KUBECONFIG": str(tmp_path / "broken")})


def test_in_a_pod_the_service_account_is_used(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("CA")
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    access = in_cluster(environ, tmp_path)

    assert access.server == "https://10.96.0.1:443"
    assert access.ca_file == str(tmp_path / "ca.crt")
    assert access.authorization() == "Bearer sa-token"
    assert (
        in_cluster({**environ, "KUBERNETES_SERVICE_HOST": "fd00::1"}, tmp_path).server
        == "https://[fd00::1]:443"
    )


def test_a_pod_without_its_service_account_is_not_configured(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no ServiceAccount token"):
        in_cluster({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)
