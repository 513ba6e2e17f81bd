// Build module for the Knative func CLI used by the end-to-end tests (func invoke).
// knative.dev/func replaces github.com/imdario/mergo with dario.cat/mergo; a depending
// module does not inherit replace directives, so the same replacement is repeated here.
// v0.44.0 is the newest knative.dev/func the module proxy serves here.
module jobfn.local/tools/func

go 1.23

require knative.dev/func v0.44.0

replace github.com/imdario/mergo => dario.cat/mergo v1.0.1
