package read

import (
	"slices"
	"testing"

	"github.com/configd/configd/audit/record"
)

func rangeKeys(c *Current, p string) []string {
	var keys []string
	c.Range(p, func(kv *record.KeyValue) { keys = append(keys, kv.Key) })
	slices.Sort(keys)
	return keys
}

func TestRangeFollowsTheStateOfItsPrefix(t *testing.T) {
	c := NewCurrent([]record.KeyValue{{Key: "app/a"}, {Key: "app/b"}, {Key: "apple"}, {Key: "/schema/app/"}}, 1)
	if got := rangeKeys(c, "app/"); !slices.Equal(got, []string{"app/a", "app/b"}) {
		t.Fatalf("Range(app/) = %v", got)
	}
	if got := rangeKeys(c, ""); !slices.Equal(got, []string{"app/a", "app/b", "apple"}) {
		t.Fatalf("Range(\"\") = %v: the store's records are in no prefix", got)
	}
	// Once indexed, the prefix follows creates and deletes.
	c.Advance([]record.Revision{{Rev: 2, Changes: []record.Change{
		{Key: "app/c", New: &record.KeyValue{Key: "app/c"}},
		{Key: "app/a"},
		{Key: "other/x", New: &record.KeyValue{Key: "other/x"}},
	}}}, 2)
	if got := rangeKeys(c, "app/"); !slices.Equal(got, []string{"app/b", "app/c"}) {
		t.Fatalf("Range(app/) after changes = %v", got)
	}
	if got := rangeKeys(c, ""); !slices.Equal(got, []string{"app/b", "app/c", "apple", "other/x"}) {
		t.Fatalf("Range(\"\") after changes = %v", got)
	}
}

// IsSecret follows the keys' marks through every kind of change: a secret
// loaded at start, marked by a put, kept by an overwrite, cleared by a
// plain put or a delete.
func TestIsSecretFollowsTheMarks(t *testing.T) {
	put := func(rev int64, key string, secret bool) record.Revision {
		return record.Revision{Rev: rev, Changes: []record.Change{{Key: key, Type: record.OpPut, New: &record.KeyValue{Key: key, Secret: secret}}}}
	}
	del := func(rev int64, key string) record.Revision {
		return record.Revision{Rev: rev, Changes: []record.Change{{Key: key, Type: record.OpDelete}}}
	}
	c := NewCurrent([]record.KeyValue{{Key: "db/pass", Secret: true}, {Key: "app/a"}}, 1)
	check := func(when string, want map[string]bool) {
		t.Helper()
		for key, w := range want {
			if got := c.IsSecret(key); got != w {
				t.Fatalf("%s: IsSecret(%q) = %v, want %v", when, key, got, w)
			}
		}
	}
	check("at start", map[string]bool{"db/pass": true, "app/a": false, "missing": false})
	c.Advance([]record.Revision{put(2, "db/pass", false)}, 2)
	check("the secret overwritten plain", map[string]bool{"db/pass": false})
	c.Advance([]record.Revision{put(3, "db/key", true), put(4, "db/key", true)}, 4)
	check("a new secret, written twice", map[string]bool{"db/key": true, "db/pass": false})
	c.Advance([]record.Revision{del(5, "db/key")}, 5)
	check("the secret deleted", map[string]bool{"db/key": false})
	c.Advance([]record.Revision{put(6, "db/key", true)}, 6)
	check("written secret again", map[string]bool{"db/key": true, "app/a": false})
}
