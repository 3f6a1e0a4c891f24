// Package tampertest edits configd's database files as someone with access
// to them would, behind configd's back, for the tests of what configd
// notices.
package tampertest

import (
	"database/sql"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Exec runs stmts, in order, on the SQLite database file at path, and
// fails t unless each one changes a row. configd may have the file open:
// Exec waits for its write lock.
func Exec(t testing.TB, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		res, err := db.Exec(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			t.Fatalf("%s: changed no row", q)
		}
	}
}
