package builtin

import (
	"fmt"
	"strconv"
	"strings"
)

// term is one `field OP value` comparison of a filter expression.
type term struct {
	path  []string
	op    string
	value any // float64, bool or string
}

var ops = []string{"==", "!=", ">=", "<=", ">", "<"}

func parseExpr(expr string) ([]term, error) {
	var out []term
	for i, part := range strings.Split(expr, "&&") {
		part = strings.TrimSpace(part)
		var t term
		for _, op := range ops {
			if l, r, ok := strings.Cut(part, op); ok {
				t.op, t.path = op, strings.Split(strings.TrimSpace(l), ".")
				r = strings.TrimSpace(r)
				switch {
				case len(r) >= 2 && (r[0] == '\'' || r[0] == '"') && r[len(r)-1] == r[0]:
					t.value = r[1 : len(r)-1]
				case r == "true" || r == "false":
					t.value = r == "true"
				default:
					f, err := strconv.ParseFloat(r, 64)
					if err != nil {
						return nil, fmt.Errorf("term %d %q: value %q is not a number, true/false or a quoted string", i+1, part, r)
					}
					t.value = f
				}
				break
			}
		}
		if t.op == "" || t.path[0] == "" {
			return nil, fmt.Errorf("term %d %q: want FIELD OP VALUE with OP one of %s", i+1, part, strings.Join(ops, " "))
		}
		out = append(out, t)
	}
	return out, nil
}

func (t term) eval(doc map[string]any) bool {
	var v any = doc
	for _, p := range t.path {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[p]; !ok {
			return false
		}
	}
	switch want := t.value.(type) {
	case float64:
		got, ok := v.(float64)
		if !ok {
			return false
		}
		switch t.op {
		case "==":
			return got == want
		case "!=":
			return got != want
		case ">":
			return got > want
		case ">=":
			return got >= want
		case "<":
			return got < want
		case "<=":
			return got <= want
		}
	case bool, string:
		switch t.op {
		case "==":
			return v == want
		case "!=":
			return v != want
		}
	}
	return false
}
