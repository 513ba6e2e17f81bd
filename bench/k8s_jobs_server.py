"""The predecessor under test: k8s-jobs 0.2.0 behind the minimal Flask route of its README's example.

Runs in its own virtualenv (made by ``bench.predecessor``) with k8s-jobs' own
``JobManagerFactory.from_env()`` and ``JobManager.create_job``; it imports nothing
from jobfn. Served, as the example serves it, by Flask's threaded server.
"""

from __future__ import annotations

import argparse
from typing import Any

import kubernetes
from flask import Flask, jsonify, request
from k8s_jobs.config import JobManagerFactory  # type: ignore[import-not-found]  # its own venv

app = Flask(__name__)


@app.route("/jobs", methods=["POST"])
def create() -> Any:
    body = request.get_json()
    job_definition_name = body.pop("job_definition_name")
    job_name = app.config["JOB_MANAGER"].create_job(job_definition_name, template_args=body)
    return jsonify({"job_name": job_name})


@app.route("/healthcheck", methods=["GET"])
def healthcheck() -> Any:
    return jsonify({"healthy": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    # $KUBECONFIG, as the example's own load_kube_config() call.
    kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    app.config["JOB_MANAGER"] = JobManagerFactory.from_env().manager()
    app.run("127.0.0.1", port, threaded=True)


if __name__ == "__main__":
    main()
