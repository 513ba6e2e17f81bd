#!/usr/bin/env bash
# Serve the function on http://localhost:$PORT with the sample definitions, against the
# cluster $KUBECONFIG names when it answers, else the local control plane (started here).
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=${PORT:-8080}
export JOB_NAMESPACE=${JOB_NAMESPACE:-jobfn}
export JOB_SIGNATURE=${JOB_SIGNATURE:-jobfn}
export JOB_DEFINITIONS_CONFIG_PATH=${JOB_DEFINITIONS_CONFIG_PATH:-$PWD/deploy/base/definitions.yaml}
# Workflow engines register their definitions first: allow it, for the images the local
# cluster holds (tests/cluster/images.py imports them; nothing can be pulled).
export JOBFN_REGISTRATION=${JOBFN_REGISTRATION:-on}
export JOBFN_REGISTRATION_IMAGES=${JOBFN_REGISTRATION_IMAGES:-busybox,busybox:*,perl:*,python:3.11-slim}
# Engines ask for more than this machine has: Snakemake always for a privileged container
# (run unprivileged), TorchX for a whole vCPU per node (a quarter is requested).
export JOBFN_REGISTRATION_PRIVILEGED=${JOBFN_REGISTRATION_PRIVILEGED:-unprivileged}
export JOBFN_REGISTRATION_CPU_REQUEST_RATIO=${JOBFN_REGISTRATION_CPU_REQUEST_RATIO:-0.25}

reachable() {
  [ -n "${KUBECONFIG:-}" ] && python3 - <<'PY' 2>/dev/null
from kubernetes import client, config
with config.new_client_from_config() as api:
    client.VersionApi(api).get_code(_request_timeout=5)
PY
}

if reachable; then
  echo "using the cluster in KUBECONFIG=$KUBECONFIG" >&2
else
  kubectl_dir=$(tests/cluster/build.sh | tail -n 1)
  eval "$(python3 -m tests.cluster up)"
fi
kubectl=kubectl
[ -n "${kubectl_dir:-}" ] && kubectl="$kubectl_dir/kubectl"

python3 - <<'PY'
import os
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
with config.new_client_from_config() as api:
    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": os.environ["JOB_NAMESPACE"]}})
    except ApiException as error:
        if error.status != 409:
            raise
PY

cat >&2 <<TXT

jobfn is starting on http://localhost:$PORT (namespace $JOB_NAMESPACE). Submit a job:

  curl -s -X POST http://localhost:$PORT/jobs -H 'Content-Type: application/json' \\
       -d '{"definition": "hello", "arguments": {"message": "hi"}}'

AWS Batch clients and workflow engines: AWS_ENDPOINT_URL_BATCH=http://localhost:$PORT
(any credentials; registering definitions is on for $JOBFN_REGISTRATION_IMAGES).
Dashboard: http://localhost:$PORT/ui

Then: curl -s http://localhost:$PORT/jobs   ·   export KUBECONFIG=$KUBECONFIG; $kubectl get jobs -n $JOB_NAMESPACE -l app.kubernetes.io/managed-by=$JOB_SIGNATURE

TXT
exec functions-framework --target handle --source function/main.py --port "$PORT"
