package postgres

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The sink reads a few fields out of every record's JSON value. Decoding
// the whole object into a map costs more than writing the row; instead
// lookupFields walks the object once, slicing out the raw values of the
// fields asked for, without allocating.

var errNotObject = errors.New("not a JSON object")

// lookupFields sets raws[i] to the raw JSON value of top-level field
// names[i] of the object in data, nil when absent. A later duplicate field
// wins, as in encoding/json.
func lookupFields(data []byte, names []string, raws [][]byte) error {
	for i := range raws {
		raws[i] = nil
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errNotObject
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return trailing(data, i+1)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return fmt.Errorf("%w: expected a field name at byte %d", errNotObject, i)
		}
		end, err := skipString(data, i)
		if err != nil {
			return err
		}
		key := data[i+1 : end-1]
		escaped := bytes.IndexByte(key, '\\') >= 0
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return fmt.Errorf("%w: expected ':' at byte %d", errNotObject, i)
		}
		i = skipSpace(data, i+1)
		vend, err := skipValue(data, i)
		if err != nil {
			return err
		}
		for n, name := range names {
			if match(key, escaped, name) {
				raws[n] = data[i:vend]
			}
		}
		i = skipSpace(data, vend)
		if i >= len(data) {
			return fmt.Errorf("%w: unterminated", errNotObject)
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return trailing(data, i+1)
		default:
			return fmt.Errorf("%w: unexpected %q at byte %d", errNotObject, data[i], i)
		}
	}
}

// match compares a field name as written (escaped when it holds a
// backslash) with name.
func match(key []byte, escaped bool, name string) bool {
	if !escaped {
		return string(key) == name
	}
	var s string
	quoted := make([]byte, 0, len(key)+2)
	quoted = append(append(append(quoted, '"'), key...), '"')
	return json.Unmarshal(quoted, &s) == nil && s == name
}

func trailing(data []byte, i int) error {
	if skipSpace(data, i) != len(data) {
		return fmt.Errorf("%w: data after the object", errNotObject)
	}
	return nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at data[i].
func skipString(data []byte, i int) (int, error) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: unterminated string", errNotObject)
}

// skipValue returns the index after the value starting at data[i].
func skipValue(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, fmt.Errorf("%w: missing value", errNotObject)
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end, err := skipString(data, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unterminated value", errNotObject)
	}
	j := i
	for j < len(data) {
		c := data[j]
		if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		j++
	}
	if j == i {
		return 0, fmt.Errorf("%w: missing value at byte %d", errNotObject, i)
	}
	return j, nil
}

// rawCell turns a raw JSON value into a column's text: strings unquoted;
// numbers, booleans, objects and arrays as written; null as NULL.
func rawCell(raw []byte) cell {
	if raw == nil || string(raw) == "null" {
		return cell{null: true}
	}
	if raw[0] == '"' {
		inner := raw[1 : len(raw)-1]
		if bytes.IndexByte(inner, '\\') < 0 {
			return cell{text: string(inner)}
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return cell{text: s}
		}
	}
	return cell{text: string(raw)}
}
