package grpcapi_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/secrets"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/core"
)

const writeLimit = 64

// newWriteEnv is a gRPC API over a store whose values are at most
// writeLimit bytes.
func newWriteEnv(t *testing.T) *grpcEnv {
	t.Helper()
	e := configdtest.NewEnv(t, configdtest.WithCore(core.WithStoreOptions(audit.WithMaxValueSize(writeLimit))))
	conn := e.GRPCConn("")
	return &grpcEnv{st: e.Store, client: configdpb.NewConfigClient(conn), conn: conn}
}

// wantCode fails the test unless err is a gRPC status with code.
func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: %v, want %v", what, err, code)
	}
}

func revision(t *testing.T, st *audit.Store, rev int64) audit.Revision {
	t.Helper()
	r, err := st.Revision(context.Background(), rev)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGRPCPutThenGetRoundTrip(t *testing.T) {
	e := newWriteEnv(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-configd-actor", "deployer", "x-configd-reason", "from metadata")
	w, err := e.client.Put(ctx, &configdpb.PutRequest{Key: "app/color", Value: []byte("blue\n"), ContentType: "text/plain", Reason: "roll out"})
	if err != nil {
		t.Fatal(err)
	}
	if w.GetRev() != e.st.Rev() || !w.GetChanged() {
		t.Fatalf("Put = %+v, want rev %d changed", w, e.st.Rev())
	}
	g, err := e.client.Get(ctx, &configdpb.GetRequest{Key: "app/color"})
	if err != nil {
		t.Fatal(err)
	}
	if string(g.GetKv().GetValue()) != "blue\n" || g.GetKv().GetModRev() != w.GetRev() || g.GetKv().GetContentType() != "text/plain" {
		t.Fatalf("Get = %+v", g.GetKv())
	}
	r := revision(t, e.st, w.GetRev())
	if r.Actor != "deployer" || r.Reason != "roll out" || r.Origin != "api" {
		t.Fatalf("revision by %q for %q from %q, want deployer, roll out, api", r.Actor, r.Reason, r.Origin)
	}
	// The same value again changes nothing; the reason falls back to the
	// metadata.
	if w, err = e.client.Put(ctx, &configdpb.PutRequest{Key: "app/color", Value: []byte("blue\n"), ContentType: "text/plain"}); err != nil || w.GetChanged() {
		t.Fatalf("Put of the same value = %+v, %v; want unchanged", w, err)
	}
	w, err = e.client.Put(ctx, &configdpb.PutRequest{Key: "app/color", Value: []byte("red")})
	if err != nil {
		t.Fatal(err)
	}
	if r := revision(t, e.st, w.GetRev()); r.Reason != "from metadata" {
		t.Fatalf("reason %q, want the metadata's", r.Reason)
	}
	// Without the metadata the actor is the peer.
	w, err = e.client.Put(context.Background(), &configdpb.PutRequest{Key: "app/color", Value: []byte("green")})
	if err != nil {
		t.Fatal(err)
	}
	if r := revision(t, e.st, w.GetRev()); r.Actor != "anonymous@127.0.0.1" {
		t.Fatalf("actor %q, want anonymous@127.0.0.1", r.Actor)
	}
}

func TestGRPCTxnCommitsAllOrNothing(t *testing.T) {
	e := newWriteEnv(t)
	e.put(t, "app/old", "1", "app/keep", "k")
	ctx := context.Background()
	w, err := e.client.Txn(ctx, &configdpb.TxnRequest{Reason: "swap", Ops: []*configdpb.TxnOp{
		{Key: "app/new", Value: []byte("2")},
		{Op: configdpb.TxnOp_DELETE, Key: "app/old"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := revision(t, e.st, w.GetRev())
	if len(r.Changes) != 2 || r.Reason != "swap" || !w.GetChanged() {
		t.Fatalf("txn revision = %+v", r)
	}
	if _, err := e.st.Get(ctx, "app/old"); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("app/old after the txn: %v, want not found", err)
	}
	// A conflict on one op commits none.
	rev := e.st.Rev()
	zero := int64(0)
	_, err = e.client.Txn(ctx, &configdpb.TxnRequest{Ops: []*configdpb.TxnOp{
		{Key: "app/third", Value: []byte("3")},
		{Key: "app/keep", Value: []byte("changed"), IfModRev: &zero},
	}})
	wantCode(t, "txn with a conflicting op", err, codes.Aborted)
	if e.st.Rev() != rev {
		t.Fatalf("rev %d after a refused txn, want %d", e.st.Rev(), rev)
	}
	if _, err := e.st.Get(ctx, "app/third"); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("app/third of a refused txn: %v, want not found", err)
	}
}

// TestGRPCTxnRefusesBadOpsAsHTTPDoes: the checks are writeops', with its
// messages.
func TestGRPCTxnRefusesBadOpsAsHTTPDoes(t *testing.T) {
	e := newWriteEnv(t)
	neg := int64(-1)
	for _, c := range []struct {
		name string
		ops  []*configdpb.TxnOp
		code codes.Code
		msg  string
	}{
		{"empty", nil, codes.InvalidArgument, "the transaction has no ops"},
		{"duplicate", []*configdpb.TxnOp{{Key: "a", Value: []byte("1")}, {Op: configdpb.TxnOp_DELETE, Key: "a"}},
			codes.InvalidArgument, `ops[1]: key "a" is already in ops[0]; a transaction touches each key once`},
		{"oversize", []*configdpb.TxnOp{{Key: "a", Value: bytes.Repeat([]byte("x"), writeLimit+1)}},
			codes.InvalidArgument, "ops[0]: value is 65 bytes; the limit is 64"},
		{"negative if_mod_rev", []*configdpb.TxnOp{{Key: "a", IfModRev: &neg}}, codes.InvalidArgument, "ops[0]: if_mod_rev -1 is negative"},
		{"delete with a value", []*configdpb.TxnOp{{Op: configdpb.TxnOp_DELETE, Key: "a", Value: []byte("1")}},
			codes.InvalidArgument, "ops[0]: a delete takes no value, encoding, content_type or secret"},
		{"secret without a master key", []*configdpb.TxnOp{{Key: "a", Value: []byte("1"), Secret: true}}, codes.FailedPrecondition, ""},
		{"unknown op", []*configdpb.TxnOp{{Op: 7, Key: "a"}}, codes.InvalidArgument, "ops[0]: unknown op 7: want PUT or DELETE"},
		{"bad key", []*configdpb.TxnOp{{Key: "a//b", Value: []byte("1")}}, codes.InvalidArgument, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.client.Txn(context.Background(), &configdpb.TxnRequest{Ops: c.ops})
			wantCode(t, "Txn", err, c.code)
			if c.msg != "" && status.Convert(err).Message() != c.msg {
				t.Fatalf("message %q, want %q", status.Convert(err).Message(), c.msg)
			}
			if e.st.Rev() != 0 {
				t.Fatalf("a refused txn committed revision %d", e.st.Rev())
			}
		})
	}
}

func TestGRPCDeleteOfAMissingKeyIsNotFound(t *testing.T) {
	e := newWriteEnv(t)
	e.put(t, "app/x", "1")
	ctx := context.Background()
	_, err := e.client.Delete(ctx, &configdpb.DeleteRequest{Key: "app/missing"})
	wantCode(t, "Delete of a missing key", err, codes.NotFound)
	w, err := e.client.Delete(ctx, &configdpb.DeleteRequest{Key: "app/x", Reason: "gone"})
	if err != nil || !w.GetChanged() {
		t.Fatalf("Delete app/x = %+v, %v", w, err)
	}
	_, err = e.client.Get(ctx, &configdpb.GetRequest{Key: "app/x"})
	wantCode(t, "Get of a deleted key", err, codes.NotFound)
}

func TestGRPCIfModRevConflictIsAbortedAndWritesNothing(t *testing.T) {
	e := newWriteEnv(t)
	e.put(t, "app/x", "1")
	ctx := context.Background()
	stale, cur := int64(0), e.st.Rev()
	_, err := e.client.Put(ctx, &configdpb.PutRequest{Key: "app/x", Value: []byte("2"), IfModRev: &stale})
	wantCode(t, "Put with a stale if_mod_rev", err, codes.Aborted)
	_, err = e.client.Delete(ctx, &configdpb.DeleteRequest{Key: "app/x", IfModRev: &stale})
	wantCode(t, "Delete with a stale if_mod_rev", err, codes.Aborted)
	if e.st.Rev() != cur {
		t.Fatalf("rev %d after refused writes, want %d", e.st.Rev(), cur)
	}
	if _, err := e.client.Put(ctx, &configdpb.PutRequest{Key: "app/x", Value: []byte("2"), IfModRev: &cur}); err != nil {
		t.Fatalf("Put with the current if_mod_rev: %v", err)
	}
	neg := int64(-1)
	_, err = e.client.Put(ctx, &configdpb.PutRequest{Key: "app/x", Value: []byte("3"), IfModRev: &neg})
	wantCode(t, "Put with a negative if_mod_rev", err, codes.InvalidArgument)
}

func TestGRPCPutRefusesBadInputAndWritesNothing(t *testing.T) {
	e := newWriteEnv(t)
	e.put(t, "app/x", "1")
	ctx := context.Background()
	rev := e.st.Rev()
	_, err := e.client.Put(ctx, &configdpb.PutRequest{Key: "app/x", Value: bytes.Repeat([]byte("x"), writeLimit+1)})
	wantCode(t, "Put of an oversize value", err, codes.InvalidArgument)
	if msg := status.Convert(err).Message(); msg != "value is 65 bytes; the limit is 64 bytes" {
		t.Fatalf("oversize message %q", msg)
	}
	for _, key := range []string{"", "a//b", "/lead", "app/x/"} {
		_, err = e.client.Put(ctx, &configdpb.PutRequest{Key: key, Value: []byte("v")})
		wantCode(t, "Put of key "+key, err, codes.InvalidArgument)
	}
	_, err = e.client.Delete(ctx, &configdpb.DeleteRequest{Key: "a//b"})
	wantCode(t, "Delete of an invalid key", err, codes.InvalidArgument)
	_, err = e.client.Put(ctx, &configdpb.PutRequest{Key: "app/s", Value: []byte("v"), Secret: true})
	wantCode(t, "Put of a secret without a master key", err, codes.FailedPrecondition)
	if e.st.Rev() != rev {
		t.Fatalf("rev %d after refused writes, want %d", e.st.Rev(), rev)
	}
	if kv, err := e.st.Get(ctx, "app/x"); err != nil || string(kv.Value) != "1" {
		t.Fatalf("app/x = %q, %v; want the last good value", kv.Value, err)
	}
	// A value of exactly the limit is taken.
	if _, err := e.client.Put(ctx, &configdpb.PutRequest{Key: "app/x", Value: bytes.Repeat([]byte("x"), writeLimit)}); err != nil {
		t.Fatalf("Put of a value at the limit: %v", err)
	}
}

func TestGRPCWritesNeedTheWriteGrant(t *testing.T) {
	e := configdtest.AuthEnv(t)
	ctx := context.Background()
	rev := e.Store.Rev()
	_, err := e.GRPC("").Put(ctx, &configdpb.PutRequest{Key: "app/x", Value: []byte("2")})
	wantCode(t, "Put without a token", err, codes.Unauthenticated)
	reader := e.GRPC("reader-app")
	_, err = reader.Put(ctx, &configdpb.PutRequest{Key: "app/x", Value: []byte("2")})
	wantCode(t, "Put by a reader", err, codes.PermissionDenied)
	_, err = reader.Delete(ctx, &configdpb.DeleteRequest{Key: "app/x"})
	wantCode(t, "Delete by a reader", err, codes.PermissionDenied)
	writer := e.GRPC("writer-app")
	_, err = writer.Txn(ctx, &configdpb.TxnRequest{Ops: []*configdpb.TxnOp{{Key: "app/y", Value: []byte("1")}, {Key: "db/x", Value: []byte("2")}}})
	wantCode(t, "Txn by writer-app reaching db/", err, codes.PermissionDenied)
	_, err = writer.Delete(ctx, &configdpb.DeleteRequest{Key: "db/x"})
	wantCode(t, "Delete of db/x by writer-app", err, codes.PermissionDenied)
	if e.Store.Rev() != rev {
		t.Fatalf("rev %d after refused writes, want %d", e.Store.Rev(), rev)
	}
	// The token's name is the actor; a non-admin token's actor metadata
	// is ignored, as HTTP ignores its header.
	claim := metadata.AppendToOutgoingContext(ctx, "x-configd-actor", "someone-else")
	w, err := writer.Put(claim, &configdpb.PutRequest{Key: "app/x", Value: []byte("2")})
	if err != nil {
		t.Fatal(err)
	}
	if r := revision(t, e.Store, w.GetRev()); r.Actor != "writer-app" {
		t.Fatalf("actor %q, want writer-app", r.Actor)
	}
	w, err = writer.Txn(ctx, &configdpb.TxnRequest{Ops: []*configdpb.TxnOp{{Key: "app/y", Value: []byte("1")}, {Op: configdpb.TxnOp_DELETE, Key: "app/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := revision(t, e.Store, w.GetRev()); r.Actor != "writer-app" || len(r.Changes) != 2 {
		t.Fatalf("txn revision = %+v", r)
	}
	// The admin may write on someone's behalf.
	w, err = e.GRPC(authz.BootstrapTokenName).Put(claim, &configdpb.PutRequest{Key: "db/x", Value: []byte("3")})
	if err != nil {
		t.Fatal(err)
	}
	if r := revision(t, e.Store, w.GetRev()); r.Actor != "someone-else" {
		t.Fatalf("actor %q, want someone-else", r.Actor)
	}
}

func TestGRPCPutOfASecretIsStoredEncrypted(t *testing.T) {
	mk, _, err := secrets.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	e := configdtest.NewEnv(t, configdtest.WithCore(core.WithStoreOptions(audit.WithMasterKey(mk))))
	c := e.GRPC("")
	ctx := context.Background()
	if _, err := c.Put(ctx, &configdpb.PutRequest{Key: "db/password", Value: []byte("hunter2"), Secret: true}); err != nil {
		t.Fatal(err)
	}
	if !e.Store.IsSecret("db/password") {
		t.Fatal("db/password is not secret")
	}
	// Over loopback the secret's value is served.
	g, err := c.Get(ctx, &configdpb.GetRequest{Key: "db/password"})
	if err != nil || string(g.GetKv().GetValue()) != "hunter2" {
		t.Fatalf("Get = %v, %v", g, err)
	}
}

func TestGRPCWriteThatBreaksASchemaIsFailedPrecondition(t *testing.T) {
	e := newGRPCEnv(t)
	ctx := context.Background()
	if _, err := e.st.SetSchema(ctx, "app/", []byte(`{"properties": {"port": {"type": "string", "pattern": "^[0-9]+$"}}}`), audit.SchemaChange{}); err != nil {
		t.Fatal(err)
	}
	rev := e.st.Rev()
	_, err := e.client.Put(ctx, &configdpb.PutRequest{Key: "app/port", Value: []byte("http")})
	wantCode(t, "Put that breaks a schema", err, codes.FailedPrecondition)
	if msg := status.Convert(err).Message(); msg != `app/port: must match the pattern "^[0-9]+$" (schema app/)` {
		t.Fatalf("message %q", msg)
	}
	_, err = e.client.Txn(ctx, &configdpb.TxnRequest{Ops: []*configdpb.TxnOp{{Key: "app/other", Value: []byte("1")}, {Key: "app/port", Value: []byte("x")}}})
	wantCode(t, "Txn that breaks a schema", err, codes.FailedPrecondition)
	if e.st.Rev() != rev {
		t.Fatalf("rev %d after refused writes, want %d", e.st.Rev(), rev)
	}
	if _, err := e.client.Put(ctx, &configdpb.PutRequest{Key: "app/port", Value: []byte("80")}); err != nil {
		t.Fatal(err)
	}
}
