// Package check tests deploy/ as code: every Kubernetes manifest decodes
// strictly (unknown fields rejected) into the Kubernetes API types, the
// KEDA ScaledObject validates against KEDA's own CRD schema with unknown
// fields rejected, and docker-compose.yml loads and validates with
// compose-go, the loader behind `docker compose config`.
//
// It is a module of its own so that k8s.io/api, the Prometheus Operator's
// types and compose-go stay out of the service's build; `make check-deploy`
// runs it. KEDA's Go module is not used: its API package imports
// controller-runtime and client-go, and compiling it took over 8 minutes on
// the project's 2-core machine. Its CRD (testdata/keda.sh_scaledobjects.yaml,
// copied unchanged from github.com/kedacore/keda/v2@v2.21.0
// config/crd/bases) is the same schema the API server enforces.
package check
