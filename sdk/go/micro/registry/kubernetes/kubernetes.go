// Package kubernetes is a registry.Registry on the Kubernetes API server, the way go-micro's
// kubernetes registry finds services: through the labels and annotations of their pods.
//
// A process registers by patching its own pod (Config.Pod, default $HOSTNAME) with the labels
// micro.mu/type=service and micro.mu/selector-NAME=service and the annotation
// micro.mu/service-NAME holding the Service's JSON with the nodes this process registered
// (go-micro's keys, so both find each other; a name that is not a valid key gets a hashed one).
// GetService lists the pods of the namespace by the selector label and reads the annotation of
// those whose phase is Running and that are not being deleted; Watch watches those pods from the
// listing's resource version. A pod holds one version of a name: registering another version
// replaces it.
//
// There is no TTL: a node lives as long as its pod runs and keeps the annotation, so
// registry.RegisterTTL is ignored and a Register that changes nothing writes nothing. A pod that
// stops running, or is deleted, takes its nodes with it; a process that exits without
// deregistering leaves them on a pod that still runs (its container restarting) until its next
// Register replaces them. Close removes what the registry registered.
//
// It talks to the API server with net/http (list, merge-patch, watch), not client-go. The
// address, token and CA come from Config and registry.Addrs or, in a pod, from its service
// account (KUBERNETES_SERVICE_HOST/PORT and DefaultServiceAccountDir). The account needs get,
// list, watch and patch on pods in its namespace (deploy/kubernetes/base/micro-rbac.yaml).
package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/sdk/go/micro/registry"
)

const (
	// DefaultTimeout bounds a call to the API server when the caller gave no context.
	DefaultTimeout = 10 * time.Second
	// DefaultServiceAccountDir is where a pod's service account token, CA and namespace are
	// mounted.
	DefaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

	labelType        = "micro.mu/type"
	labelTypeService = "service"
	selectorPrefix   = "micro.mu/selector-"
	selectorValue    = "service"
	annotationPrefix = "micro.mu/service-"
	podRunning       = "Running"
)

// Config configures a Registry beyond registry.Options (whose first address, https://host:port,
// is the API server). It is the plugin module micro.registry.kubernetes.
type Config struct {
	// Namespace of the pods; default: the service account's namespace file, else "default".
	Namespace string `json:"namespace,omitempty"`
	// Pod is the name of this process's pod, which Register patches; default: $HOSTNAME.
	Pod string `json:"pod,omitempty"`
	// Token is the bearer token; default: TokenFile.
	Token string `json:"token,omitempty"`
	// TokenFile is read on every request (service account tokens are rotated); default: the
	// service account's token file, when it exists.
	TokenFile string `json:"token_file,omitempty"`
	// CAFile is the PEM bundle the API server's certificate is checked against; default: the
	// service account's ca.crt, when it exists, else the system's roots.
	CAFile string `json:"ca_file,omitempty"`
	// ServiceAccountDir is where the in-cluster files are; default DefaultServiceAccountDir.
	ServiceAccountDir string `json:"service_account_dir,omitempty"`
}

// Registry is a Kubernetes-backed registry.Registry.
type Registry struct {
	c    *client
	err  error // from the configuration; every call returns it
	opts registry.Options
	pod  string

	ctx    context.Context // the registry's lifetime: watches run under it
	cancel context.CancelFunc

	writeMu sync.Mutex                   // one patch of the pod at a time, in order
	mu      sync.Mutex                   // guards records
	records map[string]*registry.Service // name → what this process registered on its pod
}

var _ registry.Registry = (*Registry)(nil)

// NewRegistry returns a Registry with the default Config.
func NewRegistry(opts ...registry.Option) registry.Registry { return New(Config{}, opts...) }

var _ registry.Module = Config{}

// PluginInfo names the module: micro.registry.kubernetes.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: registry.Namespace + ".kubernetes", New: func() plugin.Module { return new(Config) }}
}

// NewRegistry builds the registry c describes.
func (c Config) NewRegistry(opts ...registry.Option) (registry.Registry, error) {
	return New(c, opts...), nil
}

// New returns a Registry. It does not contact the API server; a bad configuration is returned
// by every call.
func New(cfg Config, opts ...registry.Option) *Registry {
	r := &Registry{records: map[string]*registry.Service{}, pod: cfg.Pod}
	for _, o := range opts {
		o(&r.opts)
	}
	if r.opts.Timeout <= 0 {
		r.opts.Timeout = DefaultTimeout
	}
	if r.pod == "" {
		r.pod = os.Getenv("HOSTNAME")
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.c, r.err = newClient(cfg, r.opts.Addrs, r.opts.Timeout)
	if r.err != nil {
		r.err = fmt.Errorf("registry kubernetes: %w", r.err)
	}
	return r
}

// String implements registry.Registry.
func (r *Registry) String() string { return "kubernetes" }

// Namespace is the namespace whose pods the registry reads and writes.
func (r *Registry) Namespace() string {
	if r.c == nil {
		return ""
	}
	return r.c.namespace
}

// Close removes from the pod what the registry registered and ends its watches.
func (r *Registry) Close() error {
	defer r.cancel()
	if r.err != nil {
		return nil
	}
	defer r.c.close()
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	names := slices.Collect(maps.Keys(r.records))
	r.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	labels, annotations := map[string]*string{}, map[string]*string{}
	for _, n := range names {
		labels[selectorKey(n)], annotations[annotationKey(n)] = nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	if err := r.c.patch(ctx, r.pod, labels, annotations); err != nil {
		return r.podError("close", err)
	}
	r.mu.Lock()
	r.records = map[string]*registry.Service{}
	r.mu.Unlock()
	return nil
}

func (r *Registry) callCtx(c context.Context) (context.Context, context.CancelFunc) {
	return registry.CallContext(c, r.opts.Timeout)
}

// podError says which pod a patch failed on and, when it does not exist, how to name it.
func (r *Registry) podError(op string, err error) error {
	if isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("registry kubernetes: %s: pod %s/%s not found (the registry patches its own pod: set HOSTNAME or Config.Pod to its name): %w", op, r.c.namespace, r.pod, err)
	}
	return fmt.Errorf("registry kubernetes: %s: pod %s/%s: %w", op, r.c.namespace, r.pod, err)
}

// writable checks that s may be written to the pod and, when it may, takes writeMu for the
// caller to release.
func (r *Registry) writable(op string, s *registry.Service) error {
	if r.err != nil {
		return r.err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	if r.pod == "" {
		return fmt.Errorf("registry kubernetes: %s: no pod name: set HOSTNAME or Config.Pod to this process's pod", op)
	}
	r.writeMu.Lock()
	return nil
}

// record is what this process registered for name, or nil.
func (r *Registry) record(name string) *registry.Service {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.records[name]
}

// Register implements registry.Registry: s's nodes join those this process registered for
// s.Name (or replace them, for another version), and the pod is patched when that changed
// anything. The recorded state changes only when the patch succeeds.
func (r *Registry) Register(s *registry.Service, opts ...registry.RegisterOption) error {
	var o registry.RegisterOptions
	for _, f := range opts {
		f(&o)
	}
	if err := r.writable("register", s); err != nil {
		return err
	}
	defer r.writeMu.Unlock()
	old := r.record(s.Name)
	rec := s.Copy()
	if old != nil && old.Version == s.Version {
		rec.Nodes = withNodes(old.Nodes, s.Nodes)
	}
	if old != nil && registry.Equal(old, rec) {
		return nil
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	v := string(b)
	ctx, cancel := r.callCtx(o.Context)
	defer cancel()
	if err := r.c.patch(ctx, r.pod,
		map[string]*string{labelType: ptr(labelTypeService), selectorKey(s.Name): ptr(selectorValue)},
		map[string]*string{annotationKey(s.Name): &v}); err != nil {
		return r.podError("register "+s.Name, err)
	}
	r.mu.Lock()
	r.records[s.Name] = rec
	r.mu.Unlock()
	return nil
}

// Deregister implements registry.Registry: s's nodes leave this process's record of s.Name;
// the last one removes the pod's label and annotation of that name. A name this process did
// not register is removed from its pod too (left there by an earlier run of it).
func (r *Registry) Deregister(s *registry.Service, opts ...registry.DeregisterOption) error {
	var o registry.DeregisterOptions
	for _, f := range opts {
		f(&o)
	}
	if err := r.writable("deregister", s); err != nil {
		return err
	}
	defer r.writeMu.Unlock()
	old := r.record(s.Name)
	var rec *registry.Service
	if old != nil {
		if old.Version != s.Version {
			return nil // that version is not registered here
		}
		rec = old.Copy()
		rec.Nodes = slices.DeleteFunc(rec.Nodes, func(n *registry.Node) bool {
			return slices.ContainsFunc(s.Nodes, func(m *registry.Node) bool { return m.Id == n.Id })
		})
		if len(rec.Nodes) == len(old.Nodes) {
			return nil
		}
	}
	labels := map[string]*string{selectorKey(s.Name): nil}
	annotations := map[string]*string{annotationKey(s.Name): nil}
	if rec != nil && len(rec.Nodes) > 0 {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		v := string(b)
		labels, annotations = nil, map[string]*string{annotationKey(s.Name): &v}
	}
	ctx, cancel := r.callCtx(o.Context)
	defer cancel()
	if err := r.c.patch(ctx, r.pod, labels, annotations); err != nil {
		return r.podError("deregister "+s.Name, err)
	}
	r.mu.Lock()
	if rec != nil && len(rec.Nodes) > 0 {
		r.records[s.Name] = rec
	} else {
		delete(r.records, s.Name)
	}
	r.mu.Unlock()
	return nil
}

// withNodes returns old with add's nodes put in (replacing those of the same id).
func withNodes(old, add []*registry.Node) []*registry.Node {
	out := make([]*registry.Node, 0, len(old)+len(add))
	for _, n := range old {
		if !slices.ContainsFunc(add, func(m *registry.Node) bool { return m.Id == n.Id }) {
			out = append(out, n.Copy())
		}
	}
	for _, n := range add {
		out = append(out, n.Copy())
	}
	return out
}

// GetService implements registry.Registry.
func (r *Registry) GetService(name string, opts ...registry.GetOption) ([]*registry.Service, error) {
	if r.err != nil {
		return nil, r.err
	}
	var o registry.GetOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := r.callCtx(o.Context)
	defer cancel()
	l, err := r.list(ctx, name)
	if err != nil {
		return nil, err
	}
	var parts []*registry.Service
	for _, p := range l.Items {
		parts = append(parts, services(&p, name)...)
	}
	if len(parts) == 0 {
		return nil, registry.ErrNotFound
	}
	return registry.Merge(parts), nil
}

// ListServices implements registry.Registry.
func (r *Registry) ListServices(opts ...registry.ListOption) ([]*registry.Service, error) {
	if r.err != nil {
		return nil, r.err
	}
	var o registry.ListOptions
	for _, f := range opts {
		f(&o)
	}
	ctx, cancel := r.callCtx(o.Context)
	defer cancel()
	l, err := r.list(ctx, "")
	if err != nil {
		return nil, err
	}
	var parts []*registry.Service
	for _, p := range l.Items {
		parts = append(parts, services(&p, "")...)
	}
	return registry.Merge(parts), nil
}

// list lists the pods that may hold name (every service's when name is empty).
func (r *Registry) list(ctx context.Context, name string) (*podList, error) {
	l, err := r.c.list(ctx, selector(name))
	if err != nil {
		return nil, fmt.Errorf("registry kubernetes: list pods in %s: %w", r.c.namespace, err)
	}
	return l, nil
}

// selector is the label selector of the pods holding name, or any service when name is empty.
func selector(name string) string {
	if name == "" {
		return labelType + "=" + labelTypeService
	}
	return selectorKey(name) + "=" + selectorValue
}

// services returns the services p holds (only name's, when name is set): none unless p is
// Running and not being deleted. An annotation that is not a Service's JSON, or names another
// service (two names can share a key), is skipped rather than failing the read.
func services(p *pod, name string) []*registry.Service {
	if p.Status.Phase != podRunning || p.Metadata.DeletionTimestamp != nil {
		return nil
	}
	var out []*registry.Service
	for k, v := range p.Metadata.Annotations {
		if !strings.HasPrefix(k, annotationPrefix) || (name != "" && k != annotationKey(name)) {
			continue
		}
		var s registry.Service
		if json.Unmarshal([]byte(v), &s) != nil || s.Name == "" || len(s.Nodes) == 0 ||
			(name != "" && s.Name != name) || k != annotationKey(s.Name) {
			continue
		}
		out = append(out, &s)
	}
	return out
}

// maxKeyName is the longest part of a service name in a key: a label key's name part holds
// at most 63 characters, "selector-" and this.
const maxKeyName = 63 - len("selector-")

// keyName is the part of the label and annotation keys that stands for a service name: the name
// itself when it is a valid key (as go-micro's names, "go.micro.srv.greeter", are); otherwise,
// so that two names never share a key, a readable prefix of it (characters a key may not hold
// replaced with "_") and a hash of the whole name.
func keyName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !isKeyChar(c) {
			b[i] = '_'
		}
	}
	k := string(b)
	if k == name && len(k) <= maxKeyName && isAlnum(k[len(k)-1]) {
		return k
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:8])
	p := strings.TrimRight(k[:min(len(k), maxKeyName-len(h)-1)], "-_.")
	if p == "" {
		return h
	}
	return p + "-" + h
}

func isKeyChar(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '.' }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func selectorKey(name string) string   { return selectorPrefix + keyName(name) }
func annotationKey(name string) string { return annotationPrefix + keyName(name) }

func ptr(s string) *string { return &s }
