package testserver

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// EtcdCluster is a real etcd cluster on loopback: each member its own
// process, with its own data directory, that a test can stop, kill -9 and
// start again. Its members elect a leader within about a second (heartbeat
// 50 ms, election timeout 500 ms).
type EtcdCluster struct {
	// Endpoints are every member's client URL, for clientv3.Config.
	Endpoints []string
	// Members are the members, in the order of Endpoints.
	Members []*EtcdServer
}

// EtcdCluster3 starts a 3-member etcd cluster and waits until every member
// says it is healthy. It is stopped when the test ends.
func EtcdCluster3(t testing.TB) *EtcdCluster {
	t.Helper()
	return NewEtcdCluster(t, 3)
}

// NewEtcdCluster starts an n-member etcd cluster and waits until every
// member is healthy.
func NewEtcdCluster(t testing.TB, n int) *EtcdCluster {
	t.Helper()
	bin := Binary(t, "etcd")
	ports := FreePorts(t, 2*n) // client, peer of each member
	c := &EtcdCluster{}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("m%d=http://%s", i, hostPort(ports[2*i+1])))
	}
	token := fmt.Sprintf("configd-test-%d", ports[0])
	for i := range n {
		dir := t.TempDir()
		client := "http://" + hostPort(ports[2*i])
		peer := "http://" + hostPort(ports[2*i+1])
		s := &EtcdServer{Endpoints: []string{client}, Addr: hostPort(ports[2*i]), DataDir: dir + "/data"}
		s.p = &process{t: t, name: fmt.Sprintf("etcd-m%d", i), bin: bin, dir: dir, args: []string{
			"--name", fmt.Sprintf("m%d", i),
			"--data-dir", s.DataDir,
			"--listen-client-urls", client,
			"--advertise-client-urls", client,
			"--listen-peer-urls", peer,
			"--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", token,
			"--initial-cluster-state", "new",
			"--heartbeat-interval", "50",
			"--election-timeout", "500",
			"--log-level", "warn",
			"--logger", "zap",
		}}
		t.Cleanup(s.Stop)
		c.Members = append(c.Members, s)
		c.Endpoints = append(c.Endpoints, client)
	}
	// Every member must be running before any can elect a leader and say
	// it is healthy.
	for _, m := range c.Members {
		m.p.start()
	}
	for _, m := range c.Members {
		m.p.waitReady(m.ready)
	}
	return c
}

// Kill kills member i with SIGKILL and waits for it to exit; Start brings
// it back with its data.
func (c *EtcdCluster) Kill(i int) { c.Members[i].p.kill() }

// Stop stops member i (SIGTERM).
func (c *EtcdCluster) Stop(i int) { c.Members[i].Stop() }

// Start starts member i again and waits until it is healthy: part of a
// cluster that has a leader.
func (c *EtcdCluster) Start(i int) {
	c.Members[i].p.start()
	c.Members[i].p.waitReady(c.Members[i].ready)
}

// StartAll starts the members given, all of them before waiting for any
// (a cluster that lost its quorum needs them together to elect a leader).
func (c *EtcdCluster) StartAll(members ...int) {
	for _, i := range members {
		c.Members[i].p.start()
	}
	for _, i := range members {
		c.Members[i].p.waitReady(c.Members[i].ready)
	}
}

// kill sends SIGKILL to the process group and waits for it to exit.
func (p *process) kill() {
	cmd, done := p.take()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}
