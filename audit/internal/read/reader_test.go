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
