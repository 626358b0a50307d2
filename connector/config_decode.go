package connector

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// Values reads a connector config strictly: each getter records a
// *ConfigError for a value of the wrong type, and Err also reports every
// key no getter asked for, so a typo is refused at apply instead of being
// ignored. Numbers arrive as float64 (the config is a protobuf Struct).
type Values struct {
	m    map[string]any
	used map[string]bool
	errs []error
}

// NewValues wraps a config.
func NewValues(m map[string]any) *Values {
	return &Values{m: m, used: map[string]bool{}}
}

// Fail records an error for key.
func (v *Values) Fail(key, format string, args ...any) {
	v.errs = append(v.errs, Invalid(key, format, args...))
}

func (v *Values) get(key string) (any, bool) {
	v.used[key] = true
	x, ok := v.m[key]
	if ok && x == nil {
		return nil, false
	}
	return x, ok
}

// String returns the string at key, def when absent.
func (v *Values) String(key, def string) string {
	x, ok := v.get(key)
	if !ok {
		return def
	}
	s, isStr := x.(string)
	if !isStr {
		v.Fail(key, "must be a string, got %s", typeName(x))
		return def
	}
	return s
}

// Strings returns the list of strings at key; a single string is a list
// of one.
func (v *Values) Strings(key string) []string {
	x, ok := v.get(key)
	if !ok {
		return nil
	}
	switch t := x.(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for i, e := range t {
			s, isStr := e.(string)
			if !isStr {
				v.Fail(fmt.Sprintf("%s[%d]", key, i), "must be a string, got %s", typeName(e))
				continue
			}
			out = append(out, s)
		}
		return out
	}
	v.Fail(key, "must be a list of strings, got %s", typeName(x))
	return nil
}

// StringMap returns the map of strings at key.
func (v *Values) StringMap(key string) map[string]string {
	x, ok := v.get(key)
	if !ok {
		return nil
	}
	t, isMap := x.(map[string]any)
	if !isMap {
		v.Fail(key, "must be a map of strings, got %s", typeName(x))
		return nil
	}
	out := make(map[string]string, len(t))
	for k, e := range t {
		s, isStr := e.(string)
		if !isStr {
			v.Fail(key+"."+k, "must be a string, got %s", typeName(e))
			continue
		}
		out[k] = s
	}
	return out
}

// Int returns the integer at key within [lo, hi], def when absent.
func (v *Values) Int(key string, def, lo, hi int) int {
	x, ok := v.get(key)
	if !ok {
		return def
	}
	f, isNum := x.(float64)
	switch {
	case !isNum:
		v.Fail(key, "must be a number, got %s", typeName(x))
	case f != math.Trunc(f) || math.IsInf(f, 0):
		v.Fail(key, "must be a whole number, got %v", f)
	case f < float64(lo) || f > float64(hi):
		v.Fail(key, "must be between %d and %d, got %v", lo, hi, f)
	default:
		return int(f)
	}
	return def
}

// Bool returns the boolean at key, def when absent.
func (v *Values) Bool(key string, def bool) bool {
	x, ok := v.get(key)
	if !ok {
		return def
	}
	b, isBool := x.(bool)
	if !isBool {
		v.Fail(key, "must be true or false, got %s", typeName(x))
		return def
	}
	return b
}

// Duration returns the Go duration ("500ms", "10s") at key, def when
// absent; it must be positive.
func (v *Values) Duration(key string, def time.Duration) time.Duration {
	s := v.String(key, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		v.Fail(key, "%q is not a positive duration such as 500ms or 10s", s)
		return def
	}
	return d
}

// Err returns every error recorded, and one per key nobody asked for.
func (v *Values) Err() error {
	var unknown []string
	for k := range v.m {
		if !v.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	errs := v.errs
	for _, k := range unknown {
		errs = append(errs, Invalid(k, "unknown setting"))
	}
	return errors.Join(errs...)
}

func typeName(x any) string {
	switch x.(type) {
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", x)
}
