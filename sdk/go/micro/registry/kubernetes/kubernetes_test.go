package kubernetes_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/configd/configd/internal/testserver"
	"github.com/configd/configd/sdk/go/micro/registry"
	"github.com/configd/configd/sdk/go/micro/registry/kubernetes"
	"github.com/configd/configd/sdk/go/micro/registry/registrytest"
)

// cluster is a namespace of a real API server where the test plays the kubelet: it creates the
// pods the services run in and sets their phase.
type cluster struct {
	srv  *testserver.KubeServer
	ns   string
	pods atomic.Int32
}

var namespaces atomic.Int32

func newCluster(t *testing.T, srv *testserver.KubeServer) *cluster {
	t.Helper()
	c := &cluster{srv: srv, ns: fmt.Sprintf("reg-%d", namespaces.Add(1))}
	srv.Must(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": c.ns}})
	// No controller manager makes the default ServiceAccount that pods are admitted with.
	srv.Must(t, http.MethodPost, "/api/v1/namespaces/"+c.ns+"/serviceaccounts", map[string]any{"metadata": map[string]any{"name": "default"}})
	return c
}

func (c *cluster) podPath(name string) string { return "/api/v1/namespaces/" + c.ns + "/pods/" + name }

// createPod creates a pod, Pending as the API server leaves it.
func (c *cluster) createPod(t *testing.T, name string) {
	t.Helper()
	c.srv.Must(t, http.MethodPost, "/api/v1/namespaces/"+c.ns+"/pods", map[string]any{
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "svc", "image": "example.com/svc:1"}},
			"automountServiceAccountToken": false},
	})
}

// setPhase sets the pod's phase through the status subresource, as its kubelet would.
func (c *cluster) setPhase(t *testing.T, name, phase string) {
	t.Helper()
	c.srv.Must(t, http.MethodPatch, c.podPath(name)+"/status", map[string]any{"status": map[string]any{"phase": phase}})
}

// runningPod creates a pod and makes it Running, and returns its name.
func (c *cluster) runningPod(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("svc-%d", c.pods.Add(1))
	c.createPod(t, name)
	c.setPhase(t, name, "Running")
	return name
}

func (c *cluster) deletePod(t *testing.T, name string) {
	t.Helper()
	c.srv.Must(t, http.MethodDelete, c.podPath(name)+"?gracePeriodSeconds=0", nil)
}

// reg is the registry of a process running in pod.
func (c *cluster) reg(t *testing.T, pod string) *kubernetes.Registry {
	t.Helper()
	r := kubernetes.New(kubernetes.Config{Namespace: c.ns, Pod: pod, Token: c.srv.Token, CAFile: c.srv.CAFile},
		registry.Addrs(c.srv.URL), registry.Timeout(5*time.Second))
	t.Cleanup(func() { r.Close() })
	return r
}

// process is a registry in a new Running pod: registrytest's processes.
func (c *cluster) process(t *testing.T) registry.Registry { return c.reg(t, c.runningPod(t)) }

func annotations(t *testing.T, c *cluster, pod string) (map[string]string, map[string]string) {
	t.Helper()
	var p struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(c.srv.Must(t, http.MethodGet, c.podPath(pod), nil), &p); err != nil {
		t.Fatal(err)
	}
	return p.Metadata.Labels, p.Metadata.Annotations
}

func TestKubernetes(t *testing.T) {
	srv := testserver.KubeAPIServer(t)

	t.Run("RegisterGetListDeregister", func(t *testing.T) {
		registrytest.RegisterGetListDeregister(t, newCluster(t, srv).process)
	})

	t.Run("WatchCreateUpdateDelete", func(t *testing.T) {
		registrytest.WatchCreateUpdateDelete(t, newCluster(t, srv).process)
	})

	t.Run("PodLabelsAndAnnotation", func(t *testing.T) {
		c := newCluster(t, srv)
		pod := c.runningPod(t)
		r := c.reg(t, pod)
		if err := r.Register(registrytest.Svc("go.micro.srv.greeter", "v1", "a")); err != nil {
			t.Fatal(err)
		}
		labels, ann := annotations(t, c, pod)
		if labels["micro.mu/type"] != "service" || labels["micro.mu/selector-go.micro.srv.greeter"] != "service" {
			t.Fatalf("labels %v", labels)
		}
		var s registry.Service
		if err := json.Unmarshal([]byte(ann["micro.mu/service-go.micro.srv.greeter"]), &s); err != nil || !registry.Equal(&s, registrytest.Svc("go.micro.srv.greeter", "v1", "a")) {
			t.Fatalf("annotation %q: %v", ann["micro.mu/service-go.micro.srv.greeter"], err)
		}
		// A second node joins the first; removing one keeps the other; the last removes the
		// label and the annotation.
		if err := r.Register(registrytest.Svc("go.micro.srv.greeter", "v1", "b")); err != nil {
			t.Fatal(err)
		}
		if got, err := r.GetService("go.micro.srv.greeter"); err != nil || strings.Join(registrytest.NodeIDs(got[0]), ",") != "a,b" {
			t.Fatalf("after a second node: %+v, %v", got, err)
		}
		if err := r.Deregister(registrytest.Svc("go.micro.srv.greeter", "v1", "a")); err != nil {
			t.Fatal(err)
		}
		if got, err := r.GetService("go.micro.srv.greeter"); err != nil || strings.Join(registrytest.NodeIDs(got[0]), ",") != "b" {
			t.Fatalf("after removing a: %+v, %v", got, err)
		}
		if err := r.Deregister(registrytest.Svc("go.micro.srv.greeter", "v1", "b")); err != nil {
			t.Fatal(err)
		}
		labels, ann = annotations(t, c, pod)
		if _, ok := labels["micro.mu/selector-go.micro.srv.greeter"]; ok || len(ann) != 0 || labels["micro.mu/type"] != "service" {
			t.Fatalf("after the last node: labels %v annotations %v", labels, ann)
		}
	})

	t.Run("NamesThatAreNotKeys", func(t *testing.T) {
		c := newCluster(t, srv)
		r := c.process(t)
		names := []string{"a/b", "a_b", strings.Repeat("long-name.", 8) + "x", "ends-with-", "ünï"}
		for _, n := range names {
			if err := r.Register(registrytest.Svc(n, "v1", "n-"+n)); err != nil {
				t.Fatalf("Register %q: %v", n, err)
			}
		}
		for _, n := range names {
			got, err := r.GetService(n)
			if err != nil || len(got) != 1 || got[0].Name != n || got[0].Nodes[0].Id != "n-"+n {
				t.Fatalf("GetService(%q) = %+v, %v", n, got, err)
			}
		}
		if all, err := r.ListServices(); err != nil || len(all) != len(names) {
			t.Fatalf("ListServices = %d services, %v", len(all), err)
		}
	})

	t.Run("OnlyRunningPodsServe", func(t *testing.T) {
		c := newCluster(t, srv)
		watcher := c.process(t)
		w, err := watcher.Watch(registry.WatchService("life"))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		c.createPod(t, "life-1") // Pending: scheduled, not started
		r := c.reg(t, "life-1")
		if err := r.Register(registrytest.Svc("life", "v1", "a")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetService("life"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("a Pending pod's node is served: %v", err)
		}
		c.setPhase(t, "life-1", "Running")
		if ev := registrytest.Next(t, w, 10*time.Second); ev.Action != registry.Create || ev.Service.Nodes[0].Id != "a" {
			t.Fatalf("pod Running: %s %v", ev.Action, registrytest.NodeIDs(ev.Service))
		}
		r2 := c.process(t)
		if err := r2.Register(registrytest.Svc("life", "v1", "b")); err != nil {
			t.Fatal(err)
		}
		if ev := registrytest.Next(t, w, 10*time.Second); ev.Action != registry.Update || len(ev.Service.Nodes) != 2 {
			t.Fatalf("second pod: %s %v", ev.Action, registrytest.NodeIDs(ev.Service))
		}
		c.setPhase(t, "life-1", "Failed") // its container died: its nodes go, the pod stays
		if ev := registrytest.Next(t, w, 10*time.Second); ev.Action != registry.Update || strings.Join(registrytest.NodeIDs(ev.Service), ",") != "b" {
			t.Fatalf("pod Failed: %s %v", ev.Action, registrytest.NodeIDs(ev.Service))
		}
		// A deleted pod takes its nodes: the process never deregistered.
		_, ann := annotations(t, c, "svc-2")
		if len(ann) != 1 {
			t.Fatalf("pod of b: annotations %v", ann)
		}
		c.deletePod(t, "svc-2")
		if ev := registrytest.Next(t, w, 10*time.Second); ev.Action != registry.Delete || ev.Service.Nodes[0].Id != "b" {
			t.Fatalf("pod deleted: %s %v", ev.Action, registrytest.NodeIDs(ev.Service))
		}
		if _, err := watcher.GetService("life"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("after the pods went: %v", err)
		}
	})

	t.Run("ForeignAnnotationsAreSkipped", func(t *testing.T) {
		c := newCluster(t, srv)
		good := c.process(t)
		if err := good.Register(registrytest.Svc("shared", "v1", "good")); err != nil {
			t.Fatal(err)
		}
		bad := c.runningPod(t)
		c.srv.Must(t, http.MethodPatch, c.podPath(bad), map[string]any{"metadata": map[string]any{
			"labels": map[string]string{"micro.mu/type": "service", "micro.mu/selector-shared": "service"},
			"annotations": map[string]string{
				"micro.mu/service-shared": "{not json",
				"micro.mu/service-other":  `{"name":"someone-else","nodes":[{"id":"x"}]}`,
			}}})
		got, err := good.GetService("shared")
		if err != nil || len(got) != 1 || strings.Join(registrytest.NodeIDs(got[0]), ",") != "good" {
			t.Fatalf("GetService with a broken annotation beside: %+v, %v", got, err)
		}
		if all, err := good.ListServices(); err != nil || len(all) != 1 {
			t.Fatalf("ListServices = %+v, %v", all, err)
		}
	})

	t.Run("NoPod", func(t *testing.T) {
		c := newCluster(t, srv)
		r := c.reg(t, "not-created")
		err := r.Register(registrytest.Svc("nopod", "v1", "a"))
		if err == nil || !strings.Contains(err.Error(), "pod "+c.ns+"/not-created not found") || !strings.Contains(err.Error(), "HOSTNAME") {
			t.Fatalf("Register without its pod: %v", err)
		}
		// Nothing was recorded: once the pod exists, the same Register writes it.
		c.createPod(t, "not-created")
		c.setPhase(t, "not-created", "Running")
		if err := r.Register(registrytest.Svc("nopod", "v1", "a")); err != nil {
			t.Fatal(err)
		}
		if got, err := r.GetService("nopod"); err != nil || len(got) != 1 {
			t.Fatalf("after the pod came: %+v, %v", got, err)
		}
		t.Setenv("HOSTNAME", "")
		unnamed := kubernetes.New(kubernetes.Config{Namespace: c.ns, Token: srv.Token, CAFile: srv.CAFile}, registry.Addrs(srv.URL))
		if err := unnamed.Register(registrytest.Svc("nopod", "v1", "b")); err == nil || !strings.Contains(err.Error(), "no pod name") {
			t.Fatalf("Register with no pod name: %v", err)
		}
	})

	t.Run("BadCredentials", func(t *testing.T) {
		c := newCluster(t, srv)
		r := kubernetes.New(kubernetes.Config{Namespace: c.ns, Pod: c.runningPod(t), Token: "wrong", CAFile: srv.CAFile}, registry.Addrs(srv.URL))
		if _, err := r.GetService("x"); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("GetService with a wrong token: %v", err)
		}
		// An account without the Role may not read pods: the refusal says so.
		r = kubernetes.New(kubernetes.Config{Namespace: c.ns, Token: saToken(t, c, "default"), CAFile: srv.CAFile}, registry.Addrs(srv.URL))
		if _, err := r.ListServices(); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "forbidden") {
			t.Fatalf("ListServices without RBAC: %v", err)
		}
		noCA := kubernetes.New(kubernetes.Config{Namespace: c.ns, Token: srv.Token}, registry.Addrs(srv.URL))
		if _, err := noCA.ListServices(); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("ListServices trusting the wrong CA: %v", err)
		}
	})

	t.Run("InCluster", func(t *testing.T) {
		c := newCluster(t, srv)
		pod := c.runningPod(t)
		// The pod's service account, mounted where a pod has it, with the Role of
		// deploy/kubernetes/base/micro-rbac.yaml.
		c.srv.Must(t, http.MethodPost, "/api/v1/namespaces/"+c.ns+"/serviceaccounts", map[string]any{"metadata": map[string]any{"name": "micro"}})
		c.srv.Must(t, http.MethodPost, "/apis/rbac.authorization.k8s.io/v1/namespaces/"+c.ns+"/roles", map[string]any{
			"metadata": map[string]any{"name": "micro-registry"},
			"rules":    []any{map[string]any{"apiGroups": []string{""}, "resources": []string{"pods"}, "verbs": []string{"get", "list", "watch", "patch"}}},
		})
		c.srv.Must(t, http.MethodPost, "/apis/rbac.authorization.k8s.io/v1/namespaces/"+c.ns+"/rolebindings", map[string]any{
			"metadata": map[string]any{"name": "micro-registry"},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "micro"}},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "micro-registry"},
		})
		dir := t.TempDir()
		ca, err := os.ReadFile(srv.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"token": []byte(saToken(t, c, "micro")), "ca.crt": ca, "namespace": []byte(c.ns)} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "https://"), ":")
		t.Setenv("KUBERNETES_SERVICE_HOST", host)
		t.Setenv("KUBERNETES_SERVICE_PORT", port)
		t.Setenv("HOSTNAME", pod)
		r := kubernetes.New(kubernetes.Config{ServiceAccountDir: dir})
		t.Cleanup(func() { r.Close() })
		if r.Namespace() != c.ns {
			t.Fatalf("namespace %q, want %q from the service account", r.Namespace(), c.ns)
		}
		w, err := r.Watch()
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if err := r.Register(registrytest.Svc("incluster", "v1", "a")); err != nil {
			t.Fatal(err)
		}
		if ev := registrytest.Next(t, w, 10*time.Second); ev.Action != registry.Create || ev.Service.Name != "incluster" {
			t.Fatalf("watch: %s %s", ev.Action, ev.Service.Name)
		}
		if err := r.Close(); err != nil { // a clean shutdown removes what it registered
			t.Fatal(err)
		}
		if _, ann := annotations(t, c, pod); len(ann) != 0 {
			t.Fatalf("after Close: annotations %v", ann)
		}
	})
}

// saToken asks the API server for a token of the service account (TokenRequest).
func saToken(t *testing.T, c *cluster, account string) string {
	t.Helper()
	var tr struct {
		Status struct {
			Token string `json:"token"`
		} `json:"status"`
	}
	out := c.srv.Must(t, http.MethodPost, "/api/v1/namespaces/"+c.ns+"/serviceaccounts/"+account+"/token",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": map[string]any{"expirationSeconds": 3600}})
	if err := json.Unmarshal(out, &tr); err != nil || tr.Status.Token == "" {
		t.Fatalf("TokenRequest: %s %v", out, err)
	}
	return tr.Status.Token
}

// TestKubernetesAPIServerDown: calls fail with the connection error while the API server is
// away, a failed Register records nothing, and a watcher keeps what it reported, then resumes
// and reports what changed.
func TestKubernetesAPIServerDown(t *testing.T) {
	srv := testserver.KubeAPIServer(t)
	c := newCluster(t, srv)
	p1, p2 := c.runningPod(t), c.runningPod(t)
	r1, r2 := c.reg(t, p1), c.reg(t, p2)
	if err := r1.Register(registrytest.Svc("down", "v1", "a")); err != nil {
		t.Fatal(err)
	}
	w, err := r2.Watch(registry.WatchService("down"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	srv.Stop()
	if _, err := r2.GetService("down"); err == nil || errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("GetService with the API server down: %v (want the connection error)", err)
	}
	if err := r2.Register(registrytest.Svc("down", "v1", "b")); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("Register with the API server down: %v", err)
	}
	if _, err := r2.Watch(); err == nil {
		t.Fatal("Watch with the API server down succeeded")
	}
	srv.Start()
	// The failed Register recorded nothing: the same call writes it now, and the watcher,
	// which reported nothing while the server was away, reports b joining a.
	if err := r2.Register(registrytest.Svc("down", "v1", "b")); err != nil {
		t.Fatal(err)
	}
	ev := registrytest.Next(t, w, 30*time.Second)
	if ev.Action != registry.Update || strings.Join(registrytest.NodeIDs(ev.Service), ",") != "a,b" {
		t.Fatalf("after the API server came back: %s %v", ev.Action, registrytest.NodeIDs(ev.Service))
	}
}

func TestKubernetesNoAPIServerConfigured(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	r := kubernetes.New(kubernetes.Config{Pod: "p"})
	if err := r.Register(registrytest.Svc("x", "v1", "a")); err == nil || !strings.Contains(err.Error(), "no API server") {
		t.Fatalf("Register with no API server configured: %v", err)
	}
	if _, err := r.Watch(); err == nil {
		t.Fatal("Watch with no API server configured succeeded")
	}
}
