"""The workflow engines and moto, from PyPI, in a virtualenv of their own made once per machine.

Snakemake (with its AWS Batch executor and S3 storage plugins) and TorchX pin far more than
jobfn needs, so they never enter the project's dependencies: they live in
``$JOBFN_CACHE/engines-venv-<hash of the pins>``, which a change of a pin replaces.
moto's server mode is the S3 Snakemake keeps its files in: a real local implementation of a
service that is not jobfn's. The pins are what resolved together here on PyPI.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

SNAKEMAKE = (
    "snakemake==9.27.1",
    "snakemake-executor-plugin-aws-batch==0.2.1",
    "snakemake-storage-plugin-s3==0.3.6",
)
TORCHX = ("torchx==0.7.0",)
MOTO = ("moto[s3,server]==5.2.5",)
PINS = (*SNAKEMAKE, *TORCHX, *MOTO)


def venv_dir() -> Path:
    cache = os.environ.get("JOBFN_CACHE") or str(Path.home() / ".cache" / "jobfn")
    digest = hashlib.sha256("\n".join(PINS).encode()).hexdigest()[:12]
    return Path(cache) / f"engines-venv-{digest}"


def ensure_venv() -> Path:
    """The virtualenv's bin directory, installing the pins first if this machine has not yet."""
    venv = venv_dir()
    marker = venv / "jobfn-engines-installed"
    if marker.is_file() and (venv / "bin" / "snakemake").exists():
        return venv / "bin"
    print(f"engines: installing {', '.join(PINS)} into {venv}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *PINS], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], check=True)
    marker.write_text("\n".join(PINS))
    return venv / "bin"
