// Pins the Knative releases whose CustomResourceDefinitions the deploy tests install.
// Nothing here is built: the tests run `go mod download -json` in this directory and
// read the CRD YAML from the downloaded modules (see tests/deploy/knative_crds.py).
// Serving and Eventing are released together; keep both on the same minor version.
module jobfn.local/tests/knative

go 1.25.0

require (
	knative.dev/eventing v0.50.0
	knative.dev/serving v0.50.0
)
