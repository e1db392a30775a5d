package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// doc is one YAML document of a manifest file.
type doc struct {
	file string
	kind string
	name string
	raw  []byte // YAML
}

func manifests(t *testing.T) []doc {
	t.Helper()
	files, err := filepath.Glob("../kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []doc
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range bytes.Split(b, []byte("\n---")) {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(part, &meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if meta.Kind == "" {
				continue // comments only
			}
			out = append(out, doc{file: filepath.Base(f), kind: meta.APIVersion + "/" + meta.Kind, name: meta.Metadata.Name, raw: part})
		}
	}
	return out
}

// strict decodes YAML into v, rejecting unknown and duplicate fields.
func strict(raw []byte, v any) error { return yaml.UnmarshalStrict(raw, v) }

// TestManifestsDecodeStrictly: every document of deploy/kubernetes decodes
// into its Kubernetes API type with unknown fields rejected (KEDA's
// ScaledObject: validated against KEDA's CRD schema, unknown fields
// rejected), and the production rules hold: every container non-root with a
// read-only root filesystem, no privilege escalation, all capabilities
// dropped, CPU and memory requests and limits; the fleets have PDBs and
// topology spread; ingest is scaled by a Kafka ScaledObject whose maximum
// is the topic's partition count, the API by an HPA.
func TestManifestsDecodeStrictly(t *testing.T) {
	kinds := map[string]int{}
	var pods []struct {
		where string
		spec  corev1.PodSpec
	}
	for _, d := range manifests(t) {
		where := fmt.Sprintf("%s %s %s", d.file, d.kind, d.name)
		kinds[d.kind]++
		var err error
		switch d.kind {
		case "apps/v1/Deployment":
			var x appsv1.Deployment
			if err = strict(d.raw, &x); err == nil {
				pods = append(pods, struct {
					where string
					spec  corev1.PodSpec
				}{where, x.Spec.Template.Spec})
				if len(x.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
					t.Errorf("%s: no topology spread", where)
				}
			}
		case "batch/v1/Job":
			var x batchv1.Job
			if err = strict(d.raw, &x); err == nil {
				pods = append(pods, struct {
					where string
					spec  corev1.PodSpec
				}{where, x.Spec.Template.Spec})
			}
		case "v1/Service":
			err = strict(d.raw, &corev1.Service{})
		case "v1/ServiceAccount":
			err = strict(d.raw, &corev1.ServiceAccount{})
		case "v1/ConfigMap":
			err = strict(d.raw, &corev1.ConfigMap{})
		case "policy/v1/PodDisruptionBudget":
			err = strict(d.raw, &policyv1.PodDisruptionBudget{})
		case "autoscaling/v2/HorizontalPodAutoscaler":
			err = strict(d.raw, &autoscalingv2.HorizontalPodAutoscaler{})
		case "networking.k8s.io/v1/NetworkPolicy":
			err = strict(d.raw, &networkingv1.NetworkPolicy{})
		case "monitoring.coreos.com/v1/PodMonitor":
			err = strict(d.raw, &monitoringv1.PodMonitor{})
		case "monitoring.coreos.com/v1/ServiceMonitor":
			err = strict(d.raw, &monitoringv1.ServiceMonitor{})
		case "keda.sh/v1alpha1/ScaledObject":
			err = checkScaledObject(t, d.raw)
		default:
			err = fmt.Errorf("no type to check this kind against: add it to the test")
		}
		if err != nil {
			t.Errorf("%s: %v", where, err)
		}
	}
	for _, k := range []string{"apps/v1/Deployment", "keda.sh/v1alpha1/ScaledObject", "autoscaling/v2/HorizontalPodAutoscaler",
		"policy/v1/PodDisruptionBudget", "networking.k8s.io/v1/NetworkPolicy", "monitoring.coreos.com/v1/PodMonitor", "batch/v1/Job"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in deploy/kubernetes", k)
		}
	}
	if kinds["apps/v1/Deployment"] != 2 || kinds["policy/v1/PodDisruptionBudget"] != 2 {
		t.Errorf("want the ingest and API Deployments, each with a PDB: %v", kinds)
	}
	for _, p := range pods {
		checkPod(t, p.where, p.spec)
	}
}

func checkPod(t *testing.T, where string, spec corev1.PodSpec) {
	t.Helper()
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: pod not runAsNonRoot", where)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s/%s: no securityContext", where, c.Name)
			continue
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: root filesystem writable", where, c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: privilege escalation allowed", where, c.Name)
		case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL":
			t.Errorf("%s/%s: capabilities not dropped (want drop [ALL])", where, c.Name)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
			if req.IsZero() || lim.IsZero() || lim.Cmp(req) < 0 {
				t.Errorf("%s/%s: %s request %s, limit %s: want both, limit ≥ request", where, c.Name, r, req.String(), lim.String())
			}
		}
	}
}

var kedaSchema *jsonschema.Schema

// checkScaledObject validates a ScaledObject against KEDA's CRD schema made
// strict (every object without its own additionalProperties rejects unknown
// fields, as `kubectl apply --validate=strict` does) and checks the ingest
// scaling rules.
func checkScaledObject(t *testing.T, raw []byte) error {
	t.Helper()
	if kedaSchema == nil {
		kedaSchema = loadCRDSchema(t, "testdata/keda.sh_scaledobjects.yaml", "v1alpha1")
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	// The CRD schema covers spec and status; apiVersion, kind and metadata
	// are the API server's: check them apart.
	obj := v.(map[string]any)
	meta, _ := json.Marshal(obj["metadata"])
	if err := json.Unmarshal(meta, new(struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	})); err != nil {
		return err
	}
	if err := kedaSchema.Validate(v); err != nil {
		return err
	}
	var so struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			ScaleTargetRef struct {
				Name string `json:"name"`
			} `json:"scaleTargetRef"`
			MaxReplicaCount int `json:"maxReplicaCount"`
			Triggers        []struct {
				Type     string            `json:"type"`
				Metadata map[string]string `json:"metadata"`
			} `json:"triggers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(js, &so); err != nil {
		return err
	}
	parts, err := strconv.Atoi(so.Metadata.Annotations["postflight/topic-partitions"])
	if err != nil {
		return fmt.Errorf("annotation postflight/topic-partitions: %w", err)
	}
	if so.Spec.MaxReplicaCount != parts {
		return fmt.Errorf("maxReplicaCount %d, want the topic's %d partitions", so.Spec.MaxReplicaCount, parts)
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "kafka" || so.Spec.Triggers[0].Metadata["consumerGroup"] == "" ||
		so.Spec.Triggers[0].Metadata["lagThreshold"] == "" {
		return fmt.Errorf("want one kafka trigger on the consumer group's lag: %+v", so.Spec.Triggers)
	}
	if so.Spec.ScaleTargetRef.Name != "postflight-ingest" {
		return fmt.Errorf("scales %q, want postflight-ingest", so.Spec.ScaleTargetRef.Name)
	}
	return nil
}

// loadCRDSchema compiles a CRD version's openAPIV3Schema with unknown
// fields rejected.
func loadCRDSchema(t *testing.T, path, version string) *jsonschema.Schema {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name != version {
			continue
		}
		s := v.Schema.OpenAPIV3Schema
		props := s["properties"].(map[string]any)
		for _, k := range []string{"apiVersion", "kind", "metadata"} {
			props[k] = map[string]any{} // the API server's, checked apart
		}
		strictSchema(s)
		c := jsonschema.NewCompiler()
		if err := c.AddResource("crd.json", s); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile("crd.json")
		if err != nil {
			t.Fatal(err)
		}
		return sch
	}
	t.Fatalf("%s: no version %s", path, version)
	return nil
}

// strictSchema sets additionalProperties false on every object schema that
// lists properties and says nothing about others, and drops the Kubernetes
// extensions a JSON Schema validator does not know.
func strictSchema(s any) {
	switch x := s.(type) {
	case map[string]any:
		for k := range x {
			if strings.HasPrefix(k, "x-kubernetes-") {
				if k == "x-kubernetes-int-or-string" {
					delete(x, "type")
				}
				delete(x, k)
			}
		}
		if _, ok := x["properties"]; ok {
			if _, has := x["additionalProperties"]; !has {
				x["additionalProperties"] = false
			}
		}
		for _, v := range x {
			strictSchema(v)
		}
	case []any:
		for _, v := range x {
			strictSchema(v)
		}
	}
}

// TestStrictCheckRejectsUnknownFields: the checks above would catch a typo.
func TestStrictCheckRejectsUnknownFields(t *testing.T) {
	if err := strict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 3\n"), &appsv1.Deployment{}); err == nil {
		t.Error("Deployment with spec.replica (typo) decoded")
	}
	bad := []byte(`apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x, annotations: {postflight/topic-partitions: "4"}}
spec:
  scaleTargetRef: {name: postflight-ingest}
  maxReplicaCount: 4
  maxReplicas: 4
  triggers: [{type: kafka, metadata: {consumerGroup: g, lagThreshold: "1"}}]
`)
	if err := checkScaledObject(t, bad); err == nil {
		t.Error("ScaledObject with spec.maxReplicas (not a KEDA field) validated")
	}
	good := bytes.Replace(bad, []byte("  maxReplicas: 4\n"), nil, 1)
	if err := checkScaledObject(t, good); err != nil {
		t.Errorf("minimal ScaledObject: %v", err)
	}
	_ = resource.MustParse("1")
}
