package audit

import "github.com/configd/configd/api"

// DefaultMaxValueSize is the default limit on a value's size: configd's, 1 MiB.
const DefaultMaxValueSize = api.DefaultMaxValueSize
