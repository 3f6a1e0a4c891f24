package deploy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/configd/configd/internal/testserver"
)

// TestManifestsPassAServerSideDryRun applies every object of each overlay to a real
// kube-apiserver (v1.34, RBAC and the default admission plugins on) with a server-side dry run:
// the namespace first, for real (namespaced objects need it), then every object with
// dryRun=All and strict field validation. Any refusal fails, and so does any warning the server
// sends back, such as a pod template that would violate the namespace's restricted Pod Security
// Standard or a deprecated field.
func TestManifestsPassAServerSideDryRun(t *testing.T) {
	srv := testserver.KubeAPIServer(t)
	rendered := render(t)
	names := make([]string, 0, len(rendered))
	for name := range rendered {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		objs := rendered[name]
		t.Run(name, func(t *testing.T) {
			for _, o := range objs {
				if o.Kind == "Namespace" {
					if err := apply(srv, o, false); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, o := range objs {
				if err := apply(srv, o, true); err != nil {
					t.Error(err)
				}
			}
		})
	}
	// The dry run does refuse: what the strict decode lets through but the API server's
	// validation or Pod Security admission does not.
	var deployment object
	for _, o := range rendered["replicated"] {
		if o.Kind == "Deployment" {
			deployment = o
		}
	}
	for _, bad := range []struct{ name, from, to, want string }{
		{"negative replicas", "replicas: 3", "replicas: -1", "422"},
		{"root user", "runAsNonRoot: true", "runAsNonRoot: false", "PodSecurity"},
	} {
		o := deployment
		if !bytes.Contains(o.YAML, []byte(bad.from)) {
			t.Fatalf("%s: the Deployment has no %q to change", bad.name, bad.from)
		}
		o.YAML = bytes.Replace(o.YAML, []byte(bad.from), []byte(bad.to), 1)
		if err := apply(srv, o, true); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: dry run answered %v, want an error with %q", bad.name, err, bad.want)
		}
	}
}

// apply server-side applies o, as a dry run when dry is set: a refusal or a warning is an error.
func apply(srv *testserver.KubeServer, o object, dry bool) error {
	q := url.Values{"fieldManager": {"configd-deploy-test"}, "fieldValidation": {"Strict"}, "force": {"true"}}
	if dry {
		q.Set("dryRun", "All")
	}
	req, err := http.NewRequest(http.MethodPatch, srv.URL+o.Path()+"?"+q.Encode(), bytes.NewReader(o.YAML))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/apply-patch+yaml")
	resp, err := srv.Client().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", o.Kind, o.Name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s refused (dry run %v): %s: %s", o.Kind, o.Name, dry, resp.Status, strings.TrimSpace(string(body)))
	}
	if w := resp.Header.Values("Warning"); len(w) > 0 {
		return fmt.Errorf("%s %s: the API server warns: %s", o.Kind, o.Name, strings.Join(w, "; "))
	}
	return nil
}
