package config

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/configd/configd/api"
)

// Environment variables the default instance identity is made of (see
// WithInstance).
const (
	// EnvInstance names the client's instance, as WithInstance does.
	EnvInstance = "CONFIGD_INSTANCE"
	// EnvLabels declares labels as WithLabels does, as
	// "key=value,key=value"; WithLabels's win over them key by key.
	EnvLabels = "CONFIGD_LABELS"
	// EnvPodName is the pod's name, which Kubernetes gives a container
	// through the downward API (fieldRef metadata.name).
	EnvPodName = "POD_NAME"
)

// WithInstance sets the client's instance identity: the name configd
// lists it under (GET /v1/clients, configctl clients) and, later, what a
// rollout's percentage steps hash. It must be stable across the
// process's restarts and unique among the clients of one configd; never
// an IP, which changes. Without it the client takes CONFIGD_INSTANCE, or
// else "<host>/<service>": host is $POD_NAME, else $HOSTNAME, else the
// host's name; service is the label "service" of WithLabels, else the
// program's name. Two processes of one program on one host need
// WithInstance (or CONFIGD_INSTANCE) to be told apart.
func WithInstance(id string) Option { return func(o *options) { o.instance = id } }

// WithLabels declares the client's labels (service, zone, version...):
// configd shows them with the client, and rollouts select clients by
// them. They only ever change how this client is shown and what it is
// sent, never what it may read: a client that declares false labels
// misleads no one but itself. At most 32 labels; keys of 1 to 63 bytes,
// values of at most 253. CONFIGD_LABELS ("key=value,key=value") declares
// labels too; these win over it key by key.
func WithLabels(labels map[string]string) Option {
	return func(o *options) { o.labels = maps.Clone(labels) }
}

// WithoutReports stops the client from reporting to configd (delivery
// tracking, see Validate): configd then does not list it.
func WithoutReports() Option { return func(o *options) { o.noReport = true } }

// identify fills in the default instance and checks the identity as
// configd would.
func (o *options) identify() error {
	if env := os.Getenv(EnvLabels); env != "" {
		labels, err := parseLabels(env)
		if err != nil {
			return fmt.Errorf("config: %s: %w", EnvLabels, err)
		}
		maps.Copy(labels, o.labels)
		o.labels = labels
	}
	if o.instance == "" {
		o.instance = os.Getenv(EnvInstance)
	}
	if o.instance == "" {
		o.instance = defaultInstance(o.labels["service"])
	}
	r := api.ClientReport{Instance: o.instance, Labels: o.labels, Prefixes: []string{o.prefix}}
	if err := r.Check(); err != nil {
		return fmt.Errorf("config: WithInstance, WithLabels: %w", err)
	}
	return nil
}

// identityHeaders are the headers that tell configd who the client is on
// its watch (api.HeaderInstance, api.HeaderLabels): rollouts send the
// clients in their steps their new values.
func (o *options) identityHeaders() http.Header {
	h := http.Header{}
	h.Set(api.HeaderInstance, o.instance)
	if len(o.labels) > 0 {
		h.Set(api.HeaderLabels, api.FormatLabels(o.labels))
	}
	return h
}

// parseLabels reads "key=value,key=value".
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%q is not key=value", part)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// defaultInstance is "<host>/<service>" (see WithInstance).
func defaultInstance(service string) string {
	host := os.Getenv(EnvPodName)
	if host == "" {
		host = os.Getenv("HOSTNAME")
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	if service == "" && len(os.Args) > 0 {
		service = filepath.Base(os.Args[0])
	}
	return host + "/" + service
}
