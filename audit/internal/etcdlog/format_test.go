package etcdlog

import (
	"testing"

	"github.com/configd/configd/migrations"
)

// Every migration is placed in a log format: one added after the last
// level this format covers must be placed first, as part of this format
// (it changes only the local index) or as a new one (it changes what a
// record holds or how a replica applies it).
func TestEveryMigrationHasALogFormat(t *testing.T) {
	ms, err := migrations.Load(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if last := ms[len(ms)-1].Version; last != formatLastSchema {
		t.Fatalf("the newest migration is %s (level %d); log format %d covers schema levels %d to %d: "+
			"raise formatLastSchema if the migration changes only the local index, else start format %d",
			ms[len(ms)-1].Name, last, Format, formatFirstSchema, formatLastSchema, Format+1)
	}
}
