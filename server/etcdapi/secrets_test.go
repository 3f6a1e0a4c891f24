package etcdapi_test

import (
	"net"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server/core"
	"github.com/configd/configd/server/etcdapi"
	"github.com/configd/configd/server/grpcapi"
)

// remoteListener makes every connection look as if it came from another
// host (192.0.2.7), without TLS: a plain connection a secret's value may
// not travel on.
type remoteListener struct{ net.Listener }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}
}

// TestEtcdSecretsStayOffPlainConnections: a secret's value is refused to
// a plain connection from another host, in a read, a put's prev_kv, a txn
// (before its writes) and a watch; keys alone are served.
func TestEtcdSecretsStayOffPlainConnections(t *testing.T) {
	mk, _, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	env := configdtest.NewEnv(t, configdtest.WithCore(core.WithStoreOptions(audit.WithMasterKey(mk))),
		configdtest.WithSeed(audit.Put("app/s", []byte("hunter2"), "").AsSecret(), audit.Put("app/p", []byte("plain"), "")))
	gs := grpcapi.New(env.Store, env.Hub, grpcapi.WithLogger(configdtest.Discard()), grpcapi.WithServerOptions(etcdapi.ServerOptions()...))
	etcdapi.Register(gs, env.Store, env.Hub, etcdapi.WithLogger(configdtest.Discard()))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(remoteListener{lis})
	t.Cleanup(gs.Stop)
	cli := client(t, lis.Addr().String())
	ctx := timeout(t)
	refused := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "app/s") {
			t.Fatalf("%s: %v, want PermissionDenied naming app/s", what, err)
		}
	}
	_, err = cli.Get(ctx, "app/", clientv3.WithPrefix())
	refused("get app/ --prefix", err)
	if got, err := cli.Get(ctx, "app/", clientv3.WithPrefix(), clientv3.WithKeysOnly()); err != nil || len(got.Kvs) != 2 {
		t.Fatalf("keys only: %v %v", got, err)
	}
	if got, err := cli.Get(ctx, "app/p"); err != nil || string(got.Kvs[0].Value) != "plain" {
		t.Fatalf("get app/p: %v %v", got, err)
	}
	rev := env.Store.Rev()
	_, err = cli.Put(ctx, "app/s", "new", clientv3.WithPrevKV())
	refused("put app/s --prev-kv", err)
	_, err = cli.Txn(ctx).Then(clientv3.OpPut("app/q", "1"), clientv3.OpGet("app/", clientv3.WithPrefix())).Commit()
	refused("txn reading app/", err)
	if env.Store.Rev() != rev {
		t.Fatal("a refused request wrote")
	}
	// etcd's client drops a cancel's reason: read the stream itself.
	ws, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("app/s")}}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := ws.Recv(); err != nil || !resp.Created {
		t.Fatalf("create: %v %v", resp, err)
	}
	if _, err := env.Store.Commit(ctx, audit.Txn{Actor: "t", Ops: []audit.Op{audit.Put("app/s", []byte("hunter3"), "")}}); err != nil {
		t.Fatal(err)
	}
	resp, err := ws.Recv()
	if err != nil || !resp.Canceled || len(resp.Events) != 0 || !strings.Contains(resp.CancelReason, "app/s") {
		t.Fatalf("watch of app/s: %v %v, want cancelled naming app/s", resp, err)
	}
}
