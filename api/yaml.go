package api

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// JSONCompatible converts, in place where it can, what gopkg.in/yaml.v3
// decodes into the shapes encoding/json decodes to and can marshal: maps
// keyed by strings (other keys printed), numbers as json.Number (so 64-bit
// integers stay exact), times as RFC 3339 text, the floats JSON has no
// number for as ".nan", ".inf", "-.inf", and binary as EncodeValue gives it.
// The server's tree format and the SDK's Scan both use it for YAML values.
func JSONCompatible(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = JSONCompatible(e)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = JSONCompatible(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = JSONCompatible(e)
		}
		return v
	case int:
		return json.Number(strconv.Itoa(v))
	case int64:
		return json.Number(strconv.FormatInt(v, 10))
	case uint64:
		return json.Number(strconv.FormatUint(v, 10))
	case float64:
		switch {
		case math.IsNaN(v):
			return ".nan"
		case math.IsInf(v, 1):
			return ".inf"
		case math.IsInf(v, -1):
			return "-.inf"
		}
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64))
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case []byte:
		s, _ := EncodeValue(v)
		return s
	}
	return v
}
