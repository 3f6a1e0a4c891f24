// Package config is the SDK that services use to read their configuration
// from configd.
//
// A Client keeps a local copy of configd's keys (all of them, or those
// under one prefix) current through one gRPC watch stream, and answers
// reads from that copy: Get makes no network call, takes no lock and does
// not allocate.
//
//	import "github.com/configd/configd/sdk/go/config"
//
//	// Package level, over a default client configured from CONFIGD_ADDR
//	// (and the options of config.Init).
//	v := config.Get("app", "db", "timeout")  // "app/db/timeout" is the same path
//	d := v.Duration(2 * time.Second)         // typed getters take a default
//	_ = config.Get("app").Scan(&appConfig)   // a prefix decodes as a JSON object tree
//
//	w, err := config.Watch("key1")           // a key or a prefix
//	for {
//		v, err := w.Next()                   // blocks until the value changes
//		...
//	}
//
//	// Or an explicit client.
//	c, err := config.New(ctx, config.WithAddress("configd.internal:7700"),
//		config.WithPrefix("app"),            // mirror only app/...; paths are relative to it
//		config.WithSnapshot("/var/lib/myservice/config.snapshot"))
//	defer c.Close()
//
// # Reads
//
// Get returns a Value: a handle on what a path holds at one revision. The
// typed getters (String, Int, Bool, Float64, Duration, StringSlice,
// StringMap) take the default to return when the key is missing or its
// value doesn't convert; Scan decodes a key, or a whole prefix as a tree
// of objects, into a struct. Values are immutable: the client swaps in a
// new copy for every change and never modifies one that was read.
//
// # Watches
//
// Watch returns a Watcher of a key or a prefix. Next blocks until the next
// change and returns the new value; NextUpdate also says which keys changed,
// at which revision, by whom. Each change comes once, in order: a watcher
// has a queue, changes are not merged. All watchers of a client share its
// one stream.
//
// # Writes
//
// Put, Delete and Txn write through configd's gRPC API (Config.Put,
// Delete, Txn) to the configd the client watches, with its token and TLS,
// and return the revision they made; keys are relative to the client's
// prefix, as Get's paths. The client's copy has the write once it reaches
// that revision (WaitRev). WithReason, WithContentType, Secret and IfModRev
// configure a write; a stale IfModRev is an error wrapping ErrConflict,
// the Delete of a missing key one wrapping ErrKeyNotFound.
//
//	rev, err := c.Put(ctx, "db/timeout", []byte("5s"), config.WithReason("slow disk"))
//	err = c.WaitRev(ctx, rev)
//
// # Delivery reports and Validate
//
// The client tells configd who it is (WithInstance, WithLabels), what it
// watches, the revision it has applied and the values it refused, so that
// configctl clients and configd's metrics show which instance holds which
// revision (docs/delivery.md). Validate checks a key's new values before
// they are applied: a refused value is reported and the key keeps its last
// good value.
//
//	c.Validate("limits", func(v config.Value) error { ... })
//
// WithoutReports turns the reports off.
//
// # Failures
//
// The client remembers the last revision of configd's store it applied
// (Client.Rev). When the stream breaks (configd restarts, the network
// fails) it reconnects after a short jittered backoff (50 ms growing to
// 2 s), to the next address when several are given, and resumes from that
// revision: no change is missed or repeated. It moves its revision only
// after a change is applied, and written to the snapshot file when it keeps
// one, so a crash never skips a change.
//
// A refusal of the client's token is different: configd answers 401 or
// 403 (gRPC Unauthenticated or PermissionDenied) when the token is
// missing, unknown, revoked, or may not read the client's scope, and would
// answer the same to every retry. The client then stops following configd:
// New fails at once, Watcher.Next, Watch and WaitRev return the refusal,
// Client.Err reports it (errors.Is ErrUnauthenticated or ErrForbidden,
// with configd's message), and Get keeps the last copy. A token scoped to
// a prefix needs a client of that prefix (WithPrefix) or of some of its
// keys (WithKeys): the client watches its scope, never more.
//
// With WithSnapshot the client also keeps its copy in a file, and New
// starts from that file when configd can't be reached, catching up once
// configd answers. Without a usable file, New fails when no configd answers
// within its timeout.
package config
