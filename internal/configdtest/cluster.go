package configdtest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Cluster is configd binaries running as replicas of one configd cluster
// on etcd (--store etcd): each a process of its own with a data dir of its
// own, that a test can kill -9, restart, or join late. Every replica is
// given the same flags.
type Cluster struct {
	t   testing.TB
	bin string
	// Endpoints are etcd's client URLs; Prefix the cluster's etcd prefix.
	Endpoints []string
	Prefix    string
	// Args are more flags for every replica; Env its environment (nil:
	// CleanEnv).
	Args []string
	Env  []string
	// Replicas are the replicas started, in order (Add appends); a
	// restarted one replaces its entry.
	Replicas []*Process
	dirs     []string
}

// NewCluster returns a cluster of configd binary bin on the etcd at
// endpoints under prefix (one prefix per cluster: use one per test), whose
// replicas get args; Start starts them.
func NewCluster(t testing.TB, bin string, endpoints []string, prefix string, args ...string) *Cluster {
	return &Cluster{t: t, bin: bin, Endpoints: endpoints, Prefix: prefix, Args: args}
}

// Start starts n more replicas, one after the other, and returns once all
// of them listen. The first of a new cluster creates its log; the others
// join it.
func (c *Cluster) Start(n int) *Cluster {
	c.t.Helper()
	for range n {
		c.Add()
	}
	return c
}

// Add starts one more replica on an empty data dir and waits until it
// listens: it has caught up with the cluster's log by then.
func (c *Cluster) Add() *Process {
	c.t.Helper()
	i := len(c.Replicas)
	c.dirs = append(c.dirs, filepath.Join(c.t.TempDir(), "data"))
	c.Replicas = append(c.Replicas, nil)
	return c.Restart(i)
}

// Restart starts replica i again on its data dir (after a kill or a stop),
// on a new port, and waits until it listens.
func (c *Cluster) Restart(i int) *Process {
	c.t.Helper()
	p := c.Launch(c.dirs[i], c.Name(i))
	p.Listening()
	c.Replicas[i] = p
	return p
}

// DataDir is replica i's data dir.
func (c *Cluster) DataDir(i int) string { return c.dirs[i] }

// Name is replica i's --replica-name: r1, r2, ...
func (c *Cluster) Name(i int) string { return fmt.Sprintf("r%d", i+1) }

// Launch starts a replica of the cluster on dataDir named name, with
// extra flags, and returns without waiting: for a start that must fail.
func (c *Cluster) Launch(dataDir, name string, extra ...string) *Process {
	c.t.Helper()
	args := append([]string{"--store", "etcd", "--etcd-endpoints", strings.Join(c.Endpoints, ","), "--etcd-prefix", c.Prefix,
		"--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--replica-name", name}, c.Args...)
	cmd := exec.Command(c.bin, append(args, extra...)...)
	cmd.Env = c.Env
	return Spawn(c.t, cmd)
}

// Addrs are the addresses of the replicas listed (all when none is).
func (c *Cluster) Addrs(replicas ...int) []string {
	if len(replicas) == 0 {
		for i := range c.Replicas {
			replicas = append(replicas, i)
		}
	}
	var out []string
	for _, i := range replicas {
		out = append(out, c.Replicas[i].Addr)
	}
	return out
}
