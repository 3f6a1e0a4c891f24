package textdiff

// The limits on showing values to people: the one home of these numbers,
// used by the web UI's pages and configctl diff, and described in
// docs/security.md ("Rendering limits"). Each bounds the time, memory or
// output that one value can cost, whatever it holds: a value of 60 KiB
// nested 10,000 levels deep would otherwise indent to 200 MB.
const (
	// MaxIndentDepth is the deepest nesting of JSON that is pretty-printed;
	// a deeper value is shown as stored. Configuration rarely nests past
	// 10 levels.
	MaxIndentDepth = 64
	// MaxIndentBytes caps the pretty-printed text of one JSON value; a value
	// that would indent to more is shown as stored. It is MaxDiffBytes: what
	// is indented is what can be diffed.
	MaxIndentBytes = MaxDiffBytes

	// MaxShowBytes is the most of one value's text a page shows; the rest
	// is left out with a note.
	MaxShowBytes = 256 << 10

	// MaxDiffBytes and MaxDiffLines bound each side of a line diff: larger
	// values are not diffed, only said to differ.
	MaxDiffBytes = 1 << 20
	MaxDiffLines = 20_000
	// MaxEdits is the longest edit script searched for (the edit distance
	// cap of Myers' algorithm, whose time is O((N+M)·D) and memory O(D²)):
	// when the changed lines need more edits, they are shown as removed and
	// added.
	MaxEdits = 1000

	// MaxOutputLines and MaxOutputBytes cap what one diff shows: its lines
	// (folded runs of unchanged lines count as one) and the bytes of their
	// text. The rest is cut with a note.
	MaxOutputLines = 2000
	MaxOutputBytes = 128 << 10

	// MaxPageCompared, MaxPageLines and MaxPageBytes are a Budget: the
	// lines all the diffs of one page (or one answer) may compare, and the
	// lines and bytes of text they may show together. A page of many small
	// diffs weighs its lines' markup more than their text. Diffs past the
	// budget are only said to differ.
	MaxPageCompared = 100_000
	MaxPageLines    = 4000
	MaxPageBytes    = 512 << 10

	// Context is how many unchanged lines are shown around a change.
	Context = 3
)
