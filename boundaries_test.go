package postflight_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBoundaries holds the package directions DESIGN.md states, over every
// transitive import of the non-test code (depguard in make lint checks the
// direct imports of each file): the domain imports nothing of ours; api and
// ingest never import each other; api reaches neither the store, nor the AWS
// SDK, nor Kafka.
func TestBoundaries(t *testing.T) {
	const mod = "github.com/postflight/postflight"
	rules := []struct {
		pkg    string
		denied []string
	}{
		{mod, []string{mod + "/"}},
		{mod + "/api", []string{mod + "/ingest", mod + "/store", "github.com/aws/", "github.com/IBM/sarama"}},
		{mod + "/api/openapitest", []string{mod + "/ingest", mod + "/store", "github.com/aws/", "github.com/IBM/sarama"}},
		{mod + "/ingest", []string{mod + "/api"}},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", r.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", r.pkg, err)
		}
		for dep := range strings.Lines(string(out)) {
			dep = strings.TrimSpace(dep)
			for _, d := range r.denied {
				if denied(dep, d) {
					t.Errorf("%s imports %s (directly or not): not allowed", r.pkg, dep)
				}
			}
		}
	}
}

// denied reports whether package dep is d or below it; a d ending in "/"
// is a prefix (everything under it, not d itself).
func denied(dep, d string) bool {
	if strings.HasSuffix(d, "/") {
		return strings.HasPrefix(dep, d)
	}
	return dep == d || strings.HasPrefix(dep, d+"/")
}
