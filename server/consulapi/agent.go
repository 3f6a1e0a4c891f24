package consulapi

import (
	"net"
	"net/http"
	"os"
	"strconv"
)

// Datacenter is the one datacenter configd's Consul API serves.
const Datacenter = "dc1"

// serverAddr is the address the request came in on: this configd, as
// Consul's clients know it.
func serverAddr(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return a.String()
	}
	return r.Host
}

// GET /v1/status/leader: this configd is its own leader.
func (h *handler) leader(w http.ResponseWriter, r *http.Request) {
	if methods(w, r, http.MethodGet) {
		writeJSON(w, http.StatusOK, serverAddr(r))
	}
}

// GET /v1/status/peers: this configd alone.
func (h *handler) peers(w http.ResponseWriter, r *http.Request) {
	if methods(w, r, http.MethodGet) {
		writeJSON(w, http.StatusOK, []string{serverAddr(r)})
	}
}

// agentSelf is the part of Consul's /v1/agent/self that clients read: the
// datacenter, node name and version (consul-template, the CLI's -datacenter
// default), and the member.
type agentSelf struct {
	Config agentConfig
	Member agentMember
	Meta   map[string]string
}

type agentConfig struct {
	Datacenter        string
	PrimaryDatacenter string
	NodeName          string
	NodeID            string
	Server            bool
	Version           string
	Revision          string
}

type agentMember struct {
	Name   string
	Addr   string
	Port   int
	Tags   map[string]string
	Status int
}

// GET /v1/agent/self
func (h *handler) agentSelf(w http.ResponseWriter, r *http.Request) {
	if !methods(w, r, http.MethodGet) {
		return
	}
	node := h.opts.node
	if node == "" {
		node, _ = os.Hostname()
	}
	host, port, _ := net.SplitHostPort(serverAddr(r))
	p, _ := strconv.Atoi(port)
	writeJSON(w, http.StatusOK, agentSelf{
		Config: agentConfig{Datacenter: Datacenter, PrimaryDatacenter: Datacenter, NodeName: node, Server: true,
			Version: ConsulVersion, Revision: "configd " + h.opts.version},
		Member: agentMember{Name: node, Addr: host, Port: p, Status: 1,
			Tags: map[string]string{"dc": Datacenter, "role": "consul", "build": ConsulVersion + ":configd", "port": port}},
		Meta: map[string]string{"configd_version": h.opts.version},
	})
}
