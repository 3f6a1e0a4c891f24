package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kind is a Kubernetes API type the manifests may hold: its Go type, decoded strictly (an
// unknown field is an error), and its resource in the API's paths.
type kind struct {
	new      func() any
	resource string
}

// kinds are the kinds the manifests may hold, by apiVersion/kind.
var kinds = map[string]kind{
	"v1/Namespace":                             {func() any { return &corev1.Namespace{} }, "namespaces"},
	"v1/ServiceAccount":                        {func() any { return &corev1.ServiceAccount{} }, "serviceaccounts"},
	"v1/Service":                               {func() any { return &corev1.Service{} }, "services"},
	"v1/Secret":                                {func() any { return &corev1.Secret{} }, "secrets"},
	"v1/ConfigMap":                             {func() any { return &corev1.ConfigMap{} }, "configmaps"},
	"apps/v1/StatefulSet":                      {func() any { return &appsv1.StatefulSet{} }, "statefulsets"},
	"apps/v1/Deployment":                       {func() any { return &appsv1.Deployment{} }, "deployments"},
	"policy/v1/PodDisruptionBudget":            {func() any { return &policyv1.PodDisruptionBudget{} }, "poddisruptionbudgets"},
	"networking.k8s.io/v1/NetworkPolicy":       {func() any { return &networkingv1.NetworkPolicy{} }, "networkpolicies"},
	"rbac.authorization.k8s.io/v1/Role":        {func() any { return &rbacv1.Role{} }, "roles"},
	"rbac.authorization.k8s.io/v1/RoleBinding": {func() any { return &rbacv1.RoleBinding{} }, "rolebindings"},
}

// object is one rendered manifest: its kind, its YAML and its typed value.
type object struct {
	Kind, Name string
	// APIVersion is "v1" or "group/version"; Namespace is empty for a cluster-wide object.
	APIVersion, Namespace string
	// Resource names the kind in the API's paths ("deployments").
	Resource string
	YAML     []byte
	Value    any
}

// Path is the object's path on an API server.
func (o object) Path() string {
	p := "/apis/" + o.APIVersion
	if o.APIVersion == "v1" {
		p = "/api/v1"
	}
	if o.Namespace != "" {
		p += "/namespaces/" + o.Namespace
	}
	return p + "/" + o.Resource + "/" + o.Name
}

// overlays are the ways to deploy configd the tests render: each mode, and
// each with TLS (components/tls), and with the gateway (components/gateway),
// as users' kustomizations would.
var overlays = map[string]string{
	"single":             "resources: [../single]\n",
	"replicated":         "resources: [../replicated]\n",
	"single-tls":         "resources: [../single]\ncomponents: [../components/tls]\n",
	"replicated-tls":     "resources: [../replicated]\ncomponents: [../components/tls]\n",
	"single-gateway":     "resources: [../single]\ncomponents: [../components/gateway]\n",
	"replicated-gateway": "resources: [../replicated]\ncomponents: [../components/tls, ../components/gateway]\n",
}

// render copies deploy/kubernetes to a temporary directory, adds the secret
// files a user creates (base/secrets/README.md) and builds each overlay
// with kustomize, returning the objects of each, strictly decoded.
func render(t *testing.T) map[string][]object {
	t.Helper()
	root := t.TempDir()
	err := filepath.WalkDir("kubernetes", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(root, strings.TrimPrefix(path, "kubernetes"))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "base/secrets/bootstrap-token"), []byte("test-bootstrap-token-0123456789abcdef"), 0o600)
	os.WriteFile(filepath.Join(root, "base/secrets/master-key"), bytes.Repeat([]byte{7}, 32), 0o600)
	out := map[string][]object{}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	for name, body := range overlays {
		dir := filepath.Join(root, "test-"+name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"+body), 0o644)
		rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			t.Fatalf("kustomize build %s: %v", name, err)
		}
		for _, r := range rm.Resources() {
			y, err := r.AsYAML()
			if err != nil {
				t.Fatal(err)
			}
			gvk := r.GetGvk()
			key := gvk.Kind
			if gvk.Group != "" {
				key = gvk.Group + "/" + gvk.Version + "/" + gvk.Kind
			} else {
				key = gvk.Version + "/" + gvk.Kind
			}
			k, ok := kinds[key]
			if !ok {
				t.Fatalf("%s: %s %s is a kind the test does not know", name, key, r.GetName())
			}
			v := k.new()
			j, err := yaml.YAMLToJSON(y)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(j))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("%s: %s %s does not decode strictly: %v\n%s", name, key, r.GetName(), err, y)
			}
			out[name] = append(out[name], object{Kind: gvk.Kind, Name: r.GetName(), APIVersion: gvk.ApiVersion(),
				Namespace: r.GetNamespace(), Resource: k.resource, YAML: y, Value: v})
		}
	}
	return out
}

func find[T any](objs []object, name string) (T, bool) {
	for _, o := range objs {
		if v, ok := o.Value.(T); ok && o.Name == name {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// podSpecs are the pod templates of the workloads, by workload.
func podSpecs(objs []object) map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for _, o := range objs {
		switch v := o.Value.(type) {
		case *appsv1.StatefulSet:
			out["StatefulSet/"+o.Name] = v.Spec.Template
		case *appsv1.Deployment:
			out["Deployment/"+o.Name] = v.Spec.Template
		}
	}
	return out
}

func TestManifestsDecodeStrictlyAndKeepTheirInvariants(t *testing.T) {
	for name, objs := range render(t) {
		t.Run(name, func(t *testing.T) {
			tls := strings.HasSuffix(name, "-tls") || name == "replicated-gateway"
			pods := podSpecs(objs)
			gateway := strings.HasSuffix(name, "-gateway")
			if want := map[bool]int{false: 1, true: 2}[gateway]; len(pods) != want {
				t.Fatalf("%d workloads, want %d", len(pods), want)
			}
			for _, o := range objs {
				if o.Kind != "Namespace" && !strings.Contains(string(o.YAML), "namespace: configd") {
					t.Errorf("%s %s is not in namespace configd", o.Kind, o.Name)
				}
			}
			for w, p := range pods {
				switch p.Labels["app.kubernetes.io/name"] {
				case "configd":
					checkPod(t, w, p.Spec, tls)
				case "micro-api":
					checkGatewayPod(t, w, p.Spec)
				default:
					t.Errorf("%s: pods labelled app.kubernetes.io/name=%q; want configd (the Services, the PDB and the NetworkPolicy select it) or micro-api", w, p.Labels["app.kubernetes.io/name"])
				}
			}
			if gateway {
				svc, ok := find[*corev1.Service](objs, "micro-api")
				if !ok || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
					t.Error("the gateway: want the Service micro-api of type LoadBalancer")
				}
				if _, ok := find[*policyv1.PodDisruptionBudget](objs, "micro-api"); !ok {
					t.Error("the gateway: want a PodDisruptionBudget")
				}
			}
			sa, ok := find[*corev1.ServiceAccount](objs, "configd")
			if !ok || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
				t.Error("configd's ServiceAccount must exist and mount no token: configd calls no Kubernetes API")
			}
			for _, o := range objs {
				if rb, ok := o.Value.(*rbacv1.RoleBinding); ok {
					for _, s := range rb.Subjects {
						if s.Name == "configd" {
							t.Errorf("RoleBinding %s grants configd's account a role it does not need", rb.Name)
						}
					}
				}
			}
			if s, ok := find[*corev1.Secret](objs, "configd-secrets"); !ok || len(s.Data["bootstrap-token"]) == 0 || len(s.Data["master-key"]) != 32 {
				t.Error("the Secret configd-secrets with bootstrap-token and master-key is missing")
			}
			np, ok := find[*networkingv1.NetworkPolicy](objs, "configd")
			if !ok || np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "configd" || len(np.Spec.Ingress) == 0 {
				t.Error("the NetworkPolicy configd must select configd's pods and list who may reach them")
			}
			if strings.HasPrefix(name, "single") {
				ss, ok := find[*appsv1.StatefulSet](objs, "configd")
				if !ok || ss.Spec.Replicas == nil || *ss.Spec.Replicas != 1 || len(ss.Spec.VolumeClaimTemplates) != 1 {
					t.Fatal("single: want a StatefulSet of 1 with a PersistentVolumeClaim for the data dir")
				}
			} else {
				d, ok := find[*appsv1.Deployment](objs, "configd")
				if !ok || d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
					t.Fatal("replicated: want a Deployment of 3")
				}
				spec := d.Spec.Template.Spec
				if spec.Affinity == nil || spec.Affinity.PodAntiAffinity == nil {
					t.Error("replicated: the replicas need anti-affinity")
				}
				pdb, ok := find[*policyv1.PodDisruptionBudget](objs, "configd")
				if !ok || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 ||
					pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "configd" {
					t.Error("replicated: want a PodDisruptionBudget keeping 2 of the replicas")
				}
				env := envOf(spec.Containers[0])
				if env["CONFIGD_STORE"] != "etcd" || env["CONFIGD_ETCD_ENDPOINTS"] != "configMap configd-etcd/endpoints" {
					t.Errorf("replicated: the store must be etcd, its endpoints from the ConfigMap configd-etcd: %v", env)
				}
				if _, ok := find[*corev1.ConfigMap](objs, "configd-etcd"); !ok {
					t.Error("replicated: the ConfigMap configd-etcd is missing")
				}
			}
		})
	}
}

func envOf(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			env[e.Name] = "configMap " + e.ValueFrom.ConfigMapKeyRef.Name + "/" + e.ValueFrom.ConfigMapKeyRef.Key
		case e.ValueFrom != nil:
			env[e.Name] = "ref"
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

// checkGatewayPod checks the gateway's pods: what every pod must have, its
// probes, and the account the Kubernetes registry needs.
func checkGatewayPod(t *testing.T, w string, p corev1.PodSpec) {
	t.Helper()
	checkAnyPod(t, w, p)
	if p.ServiceAccountName != "micro" || p.AutomountServiceAccountToken == nil || !*p.AutomountServiceAccountToken {
		t.Errorf("%s: the gateway runs as the account micro with its token mounted (the Kubernetes registry reads pods)", w)
	}
	for _, c := range p.Containers {
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil {
			t.Errorf("%s container %s: want HTTP readiness and liveness probes", w, c.Name)
		}
	}
}

// checkAnyPod checks what every pod of the manifests must have: non-root, a
// tagged image, requests and limits, no privilege escalation, a read-only
// root and no capability.
func checkAnyPod(t *testing.T, w string, p corev1.PodSpec) {
	t.Helper()
	if p.SecurityContext == nil || p.SecurityContext.RunAsNonRoot == nil || !*p.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot is not set", w)
	}
	for _, c := range p.Containers {
		where := fmt.Sprintf("%s container %s", w, c.Name)
		i := strings.LastIndex(c.Image, ":")
		if i < 0 || strings.Contains(c.Image[i:], "/") || strings.HasSuffix(c.Image, ":latest") {
			t.Errorf("%s: image %q has no tag, or latest", where, c.Image)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Limits[r]; !ok {
				t.Errorf("%s: no %s limit", where, r)
			}
			if _, ok := c.Resources.Requests[r]; !ok {
				t.Errorf("%s: no %s request", where, r)
			}
		}
		checkMemLimit(t, where, c)
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
			!slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: want no privilege escalation, a read-only root and every capability dropped", where)
		}
	}
}

// checkMemLimit checks that c, whose binary is Go's (configd's or the
// gateway's), sets GOMEMLIMIT to 75–95% of its memory limit: the runtime
// then collects harder before the container would be killed for its
// memory, and leaves room for what it does not count.
func checkMemLimit(t *testing.T, where string, c corev1.Container) {
	t.Helper()
	v := envOf(c)["GOMEMLIMIT"]
	limit, ok := c.Resources.Limits[corev1.ResourceMemory]
	// GOMEMLIMIT's MiB and GiB are Kubernetes' Mi and Gi.
	q, err := resource.ParseQuantity(strings.TrimSuffix(v, "B"))
	if v == "" || !ok || err != nil {
		t.Errorf("%s: want GOMEMLIMIT (in MiB) below the memory limit; got %q (%v)", where, v, err)
		return
	}
	if r := float64(q.Value()) / float64(limit.Value()); r < 0.75 || r > 0.95 {
		t.Errorf("%s: GOMEMLIMIT %s is %.0f%% of the memory limit %s; want 75–95%%", where, v, 100*r, limit.String())
	}
}

// checkPod checks what every configd pod must have.
func checkPod(t *testing.T, w string, p corev1.PodSpec, tls bool) {
	t.Helper()
	checkAnyPod(t, w, p)
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Errorf("%s: mounts a service account token", w)
	}
	for _, c := range p.Containers {
		where := fmt.Sprintf("%s container %s", w, c.Name)
		scheme := corev1.URISchemeHTTP
		if tls {
			scheme = corev1.URISchemeHTTPS
		}
		for probe, want := range map[string]struct {
			p    *corev1.Probe
			path string
		}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}, "startup": {c.StartupProbe, "/healthz"}} {
			p := want.p
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want.path {
				t.Errorf("%s: the %s probe must GET %s", where, probe, want.path)
				continue
			}
			if got := p.HTTPGet.Scheme; got != scheme && !(got == "" && scheme == corev1.URISchemeHTTP) {
				t.Errorf("%s: the %s probe uses %s, want %s", where, probe, got, scheme)
			}
		}
		env := envOf(c)
		if tls && (env["CONFIGD_TLS_CERT"] == "" || env["CONFIGD_TLS_KEY"] == "") {
			t.Errorf("%s: TLS on, but no certificate and key given", where)
		}
		if env["CONFIGD_BOOTSTRAP_TOKEN_FILE"] == "" || env["CONFIGD_MASTER_KEY_FILE"] == "" {
			t.Errorf("%s: the bootstrap token and master key files are not given", where)
		}
	}
}
