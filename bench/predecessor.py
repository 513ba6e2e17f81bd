"""k8s-jobs 0.2.0 from PyPI in a virtualenv of its own, made once per machine.

Its pinned kubernetes 10 needs PyYAML 3.x, which does not build on Python 3.11, so
it is installed with ``--no-deps`` beside the kubernetes client the harness itself
uses, ``jinja2<3``, ``markupsafe==2.0.1`` and Flask: that combination imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kubernetes import __version__ as KUBERNETES_VERSION

K8S_JOBS = "k8s-jobs==0.2.0"
DEPENDENCIES = (f"kubernetes=={KUBERNETES_VERSION}", "jinja2<3", "markupsafe==2.0.1", "flask<2")
SERVER = Path(__file__).resolve().parent / "k8s_jobs_server.py"


def venv_dir() -> Path:
    cache = os.environ.get("JOBFN_CACHE") or str(Path.home() / ".cache" / "jobfn")
    return Path(cache) / "bench-venv-k8s-jobs"


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv() -> Path:
    """The virtualenv's python, installing k8s-jobs first if this machine has not yet."""
    venv = venv_dir()
    marker = venv / "jobfn-bench-installed"
    wanted = "\n".join((K8S_JOBS, *DEPENDENCIES))
    if marker.is_file() and marker.read_text() == wanted and _python(venv).exists():
        return _python(venv)
    print(f"bench: installing {K8S_JOBS} into {venv}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", K8S_JOBS], check=True)
    subprocess.run([*pip, *DEPENDENCIES], check=True)
    subprocess.run(
        [str(_python(venv)), "-c", "import flask, k8s_jobs.config, k8s_jobs.manager"],
        check=True,
    )
    marker.write_text(wanted)
    return _python(venv)


def server_argv(port: int) -> list[str]:
    return [str(ensure_venv()), str(SERVER), "--port", str(port)]
