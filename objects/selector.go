package objects

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/meshfed/meshfed/internal/errlist"
)

// Operator is how a selector requirement compares a label.
type Operator string

// Operators, with the syntax ParseSelector accepts for each.
const (
	OpEquals    Operator = "="      // key=value or key==value
	OpNotEquals Operator = "!="     // key!=value; also true when the label is missing
	OpExists    Operator = "exists" // key
	OpNotExists Operator = "!"      // !key
	OpIn        Operator = "in"     // key in (v1,v2)
	OpNotIn     Operator = "notin"  // key notin (v1,v2); also true when the label is missing
)

// Requirement is one condition of a selector.
type Requirement struct {
	Key string
	Op  Operator
	// Values holds one value for = and !=, one or more for in and notin, and
	// none for exists and !.
	Values []string
}

// Selector is a label selector: every requirement must hold. The zero value
// matches everything.
type Selector struct {
	Requirements []Requirement
}

// setExpr matches "key in (a,b)" and "key notin (a,b)".
var setExpr = regexp.MustCompile(`^(\S+)\s+(in|notin)\s*\(([^()]*)\)$`)

// ParseSelector parses a Kubernetes-style label selector: comma-separated
// requirements "k=v" (or "k==v"), "k!=v", "k" (the label exists), "!k" (it
// does not), "k in (v1,v2)" and "k notin (v1,v2)". Spaces around keys,
// operators and values are ignored. The empty string selects everything.
// Keys and values must be valid label keys and values.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	if strings.TrimSpace(s) == "" {
		return sel, nil
	}
	fail := func(part, why string) (Selector, error) {
		return Selector{}, &FieldError{Reason: errlist.Clip(fmt.Sprintf("invalid label selector %q: %q: %s", truncate(s), truncate(part), why), maxReasonLen)}
	}
	parts, ok := splitTopLevel(s)
	if !ok {
		return fail(s, "unbalanced parentheses")
	}
	for _, raw := range parts {
		part := strings.TrimSpace(raw)
		var r Requirement
		switch {
		case part == "":
			return fail(raw, "empty requirement")
		case setExpr.MatchString(part):
			m := setExpr.FindStringSubmatch(part)
			r = Requirement{Key: m[1], Op: Operator(m[2])}
			if strings.TrimSpace(m[3]) == "" {
				return fail(raw, m[2]+" needs at least one value")
			}
			for _, v := range strings.Split(m[3], ",") {
				v = strings.TrimSpace(v)
				if v == "" {
					return fail(raw, "empty value in the set")
				}
				r.Values = append(r.Values, v)
			}
		case strings.Contains(part, "!="):
			k, v, _ := strings.Cut(part, "!=")
			r = Requirement{Key: strings.TrimSpace(k), Op: OpNotEquals, Values: []string{strings.TrimSpace(v)}}
		case strings.Contains(part, "=="):
			k, v, _ := strings.Cut(part, "==")
			r = Requirement{Key: strings.TrimSpace(k), Op: OpEquals, Values: []string{strings.TrimSpace(v)}}
		case strings.Contains(part, "="):
			k, v, _ := strings.Cut(part, "=")
			r = Requirement{Key: strings.TrimSpace(k), Op: OpEquals, Values: []string{strings.TrimSpace(v)}}
		case strings.HasPrefix(part, "!"):
			r = Requirement{Key: strings.TrimSpace(part[1:]), Op: OpNotExists}
		default:
			r = Requirement{Key: part, Op: OpExists}
		}
		if r.Key == "" {
			return fail(raw, "missing label key")
		}
		if why := checkLabelKey(r.Key); why != "" {
			return fail(raw, why)
		}
		for _, v := range r.Values {
			if why := checkLabelValue(v); why != "" {
				return fail(raw, why)
			}
			if strings.ContainsAny(v, "=!") {
				return fail(raw, "a value may not contain '=' or '!'")
			}
		}
		sel.Requirements = append(sel.Requirements, r)
	}
	return sel, nil
}

// splitTopLevel splits s at commas outside parentheses.
func splitTopLevel(s string) ([]string, bool) {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return nil, false
			}
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, false
	}
	return append(parts, s[start:]), true
}

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s.Requirements {
		v, ok := labels[r.Key]
		var hold bool
		switch r.Op {
		case OpEquals:
			hold = ok && v == r.Values[0]
		case OpNotEquals:
			hold = !ok || v != r.Values[0]
		case OpExists:
			hold = ok
		case OpNotExists:
			hold = !ok
		case OpIn:
			hold = ok && slices.Contains(r.Values, v)
		case OpNotIn:
			hold = !ok || !slices.Contains(r.Values, v)
		}
		if !hold {
			return false
		}
	}
	return true
}

// Empty reports whether the selector matches everything.
func (s Selector) Empty() bool { return len(s.Requirements) == 0 }

// String returns the selector in the syntax ParseSelector accepts.
func (s Selector) String() string {
	parts := make([]string, len(s.Requirements))
	for i, r := range s.Requirements {
		switch r.Op {
		case OpExists:
			parts[i] = r.Key
		case OpNotExists:
			parts[i] = "!" + r.Key
		case OpIn, OpNotIn:
			parts[i] = r.Key + " " + string(r.Op) + " (" + strings.Join(r.Values, ",") + ")"
		default:
			parts[i] = r.Key + string(r.Op) + r.Values[0]
		}
	}
	return strings.Join(parts, ",")
}
