// Package commit is the commit path of the audited store: everything that
// turns a write (a transaction, a rollback, a source's snapshot) into a
// numbered, durable revision.
//
// One goroutine, the Writer, takes the queued requests in batches (group
// commit: many commits, one fsync): what is queued when it is free, except
// that on a log of its own a lone request between larger batches waits up
// to 100 µs for company (lingerFor). It runs each batch through two
// halves, with a seam between them:
//
//  1. Decide (decider, in this package): what each request of the batch
//     commits. Requests are validated before they are queued
//     (validate.go); the decider checks what depends on the state: the
//     compare-and-set conditions, the layers (a key a higher layer owns, a
//     tombstone over a lower one), the secrets (sealed with their data
//     key), and builds each revision's Record: its content as stored, its
//     chain hash and the digest of the state it produces (package chain).
//     A refused request fails alone; the others go on.
//
//  2. Make durable and apply (a Log): the batch's records become durable,
//     in order, and are applied to the local database, all or none. This is
//     the seam. A store on SQLite alone runs package sqlitelog with a
//     journal (package journal, a Deferred Log): a batch is durable once
//     its records are written to the journal and fdatasync'd, while its
//     rows go into one SQLite transaction that gathers many batches and
//     that the writer settles (commits, fsync'd) when it is idle, every
//     250 ms, before work alone and when a reader waits for the database
//     (Writer.AwaitSettled): the b-tree pages many batches touch are
//     written once. At start, what the journal holds after the database's
//     newest revision is applied first, checked against the chain as a
//     replica checks what it applies (Writer.Recover). Without a journal,
//     one SQLite transaction per batch, whose COMMIT (WAL,
//     synchronous=FULL) is the durability. A replicated Log fits the same interface: an etcd Log appends the
//     batch's records to the replicated log in one etcd transaction that
//     compares the log's head, and commits the local transaction once etcd
//     has them; every other replica applies the same records, in order, to
//     its own database (Batch.Append, then Commit without the etcd step). A
//     Log that loses the race for the head fails the batch with
//     ErrHeadMoved and nothing advances; the writer then applies what it
//     missed (Replicated.After, Writer.Apply) and decides the batch again,
//     a bounded number of times (apply.go).
//
// Decisions read the local state through the Batch (State): the newest
// durable revision, plus what the batch's earlier records wrote once
// flushed. The read path (package read) never goes through this package:
// it reads the database and Current, whatever the Log.
//
// # Invariants
//
//   - Revision order: revisions are numbered in the order the writer
//     decides them, each one more than the one before, with no gaps; each
//     record's hash follows the previous record's (chain.Head).
//   - Apply-then-advance: only once Batch.Commit returns does the writer
//     advance, in this order: the chain's head, the in-memory state and
//     revision (read.Current: readers see the revisions), the commit hooks
//     (the watch hub hears of them, in revision order), and last the
//     callers. A batch the Log cannot make durable advances nothing.
//   - Acknowledged = durable: Commit returns a revision only after the Log
//     made it durable; a crash after that loses nothing acknowledged.
//
// Work that is not a revision but must not race one (a compaction step,
// new data keys) runs alone on the writer, between batches (Writer.Alone).
//
// Where to start reading for "change the commit path": this comment, then
// Log and Batch (log.go), Writer.commitBatch (writer.go), the request kinds
// (request.go) and decider (decide.go); package sqlitelog for the SQLite
// side.
package commit
