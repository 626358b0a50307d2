package objects

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
	"unicode"

	"github.com/meshfed/meshfed/internal/errlist"
)

// Name rules shared by validation and selectors.

// checkDNSLabel returns why s is not a DNS-label-like name (lower-case
// letters, digits and '-', starting and ending with a letter or digit, at
// most 63 characters), or "" when it is one.
func checkDNSLabel(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > 63:
		return fmt.Sprintf("%q is %d characters long, more than 63", truncate(s), len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(s)-1 {
			continue
		}
		return fmt.Sprintf("%q is not a valid name: use lower-case letters, digits and '-', starting and ending with a letter or digit", truncate(s))
	}
	return ""
}

// checkLabelKey returns why k is not a valid label key, or "". Keys are
// Kubernetes-like: an optional DNS-subdomain prefix and '/', then a name of
// at most 63 letters, digits, '-', '_' and '.', starting and ending with a
// letter or digit.
func checkLabelKey(k string) string {
	name := k
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if r := checkSubdomain(prefix); r != "" {
			return fmt.Sprintf("label key %q: prefix %s", truncate(k), r)
		}
	}
	if name == "" {
		return fmt.Sprintf("label key %q: name must not be empty", truncate(k))
	}
	if r := checkLabelName(name); r != "" {
		return fmt.Sprintf("label key %q: %s", truncate(k), r)
	}
	return ""
}

// checkLabelValue returns why v is not a valid label value, or "". Values may
// be empty; otherwise they follow the rules of label names.
func checkLabelValue(v string) string {
	if v == "" {
		return ""
	}
	if r := checkLabelName(v); r != "" {
		return fmt.Sprintf("label value %q: %s", truncate(v), r)
	}
	return ""
}

func checkLabelName(s string) string {
	if len(s) > 63 {
		return fmt.Sprintf("%d characters long, more than 63", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || (c == '-' || c == '_' || c == '.') && i > 0 && i < len(s)-1 {
			continue
		}
		return "use letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
	}
	return ""
}

func checkSubdomain(s string) string {
	if s == "" || len(s) > 253 {
		return "must be a DNS subdomain of 1 to 253 characters"
	}
	for _, part := range strings.Split(s, ".") {
		if checkDNSLabel(part) != "" {
			return fmt.Sprintf("%q is not a DNS subdomain (lower-case labels separated by dots)", truncate(s))
		}
	}
	return ""
}

// truncate shortens a user-supplied value quoted in a message.
func truncate(s string) string { return errlist.Clip(s, 80) }

// Topic is a parsed Pulsar topic name.
type Topic struct {
	// Domain is "persistent" or "non-persistent".
	Domain    string
	Tenant    string
	Namespace string
	// Name is the topic's local name.
	Name string
}

// String returns the fully qualified name, "persistent://tenant/ns/name".
func (t Topic) String() string {
	return t.Domain + "://" + t.Tenant + "/" + t.Namespace + "/" + t.Name
}

// pulsarName matches Pulsar tenant and namespace names.
var pulsarName = regexp.MustCompile(`^[-=:.\w]+$`)

// ParseTopic parses a topic name the way Pulsar clients do:
//
//	persistent://tenant/namespace/topic   (or non-persistent://...)
//	tenant/namespace/topic                → persistent://tenant/namespace/topic
//	topic                                 → persistent://public/default/topic
//
// Short names are resolved against Pulsar's public/default, as a Pulsar
// client would, not against the tenant and namespace of the object using
// them. Legacy names with a cluster part and local names containing '/' are
// refused.
func ParseTopic(s string) (Topic, error) {
	fail := func(why string) (Topic, error) {
		return Topic{}, fmt.Errorf("invalid topic %q: %s; write persistent://tenant/namespace/topic", truncate(s), why)
	}
	t := Topic{Domain: "persistent"}
	rest := s
	if i := strings.Index(s, "://"); i >= 0 {
		t.Domain, rest = s[:i], s[i+3:]
		if t.Domain != "persistent" && t.Domain != "non-persistent" {
			return fail(fmt.Sprintf("domain %q is neither persistent nor non-persistent", truncate(t.Domain)))
		}
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 3:
		t.Tenant, t.Namespace, t.Name = parts[0], parts[1], parts[2]
	case len(parts) == 1 && rest == s:
		t.Tenant, t.Namespace, t.Name = defaultTenant, defaultNamespace, parts[0]
	case rest != s:
		return fail("expected tenant/namespace/topic after " + t.Domain + "://")
	default:
		return fail("expected topic or tenant/namespace/topic")
	}
	if !pulsarName.MatchString(t.Tenant) {
		return fail(fmt.Sprintf("tenant %q is empty or has characters other than letters, digits, '-', '_', '=', ':' and '.'", truncate(t.Tenant)))
	}
	if !pulsarName.MatchString(t.Namespace) {
		return fail(fmt.Sprintf("namespace %q is empty or has characters other than letters, digits, '-', '_', '=', ':' and '.'", truncate(t.Namespace)))
	}
	if t.Name == "" {
		return fail("the topic name is empty")
	}
	for _, r := range t.Name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fail("the topic name contains a space or control character")
		}
	}
	return t, nil
}

// quantity matches a Kubernetes-style quantity without exponent: a decimal
// number and an optional suffix.
var quantity = regexp.MustCompile(`^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([a-zA-Z]*)$`)

var quantitySuffixes = map[string]*big.Rat{
	"":   big.NewRat(1, 1),
	"n":  big.NewRat(1, 1_000_000_000),
	"u":  big.NewRat(1, 1_000_000),
	"m":  big.NewRat(1, 1000),
	"k":  big.NewRat(1_000, 1),
	"M":  big.NewRat(1_000_000, 1),
	"G":  big.NewRat(1_000_000_000, 1),
	"T":  big.NewRat(1_000_000_000_000, 1),
	"P":  big.NewRat(1_000_000_000_000_000, 1),
	"E":  big.NewRat(1_000_000_000_000_000_000, 1),
	"Ki": big.NewRat(1<<10, 1),
	"Mi": big.NewRat(1<<20, 1),
	"Gi": big.NewRat(1<<30, 1),
	"Ti": big.NewRat(1<<40, 1),
	"Pi": big.NewRat(1<<50, 1),
	"Ei": big.NewRat(1<<60, 1),
}

// parseQuantity returns the value of a quantity times scale, rounded up.
func parseQuantity(s string, scale int64, what string) (int64, error) {
	m := quantity.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid %s quantity %q: write a number with an optional suffix, such as %s", what, truncate(s), examples(what))
	}
	factor, ok := quantitySuffixes[m[2]]
	if !ok {
		return 0, fmt.Errorf("invalid %s quantity %q: unknown suffix %q (use m, k, M, G, Ki, Mi, Gi, ...)", what, truncate(s), m[2])
	}
	num := m[1]
	if strings.HasSuffix(num, ".") {
		num += "0"
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid %s quantity %q", what, truncate(s))
	}
	r.Mul(r, factor)
	r.Mul(r, big.NewRat(scale, 1))
	q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if rem.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() || q.Int64() > math.MaxInt64/2 {
		return 0, fmt.Errorf("%s quantity %q is too large", what, truncate(s))
	}
	if q.Sign() == 0 {
		return 0, fmt.Errorf("%s quantity %q must be greater than zero", what, truncate(s))
	}
	return q.Int64(), nil
}

func examples(what string) string {
	if what == "cpu" {
		return "500m or 2"
	}
	return "128Mi or 1Gi"
}

// ParseCPU parses a Kubernetes-style CPU quantity ("500m", "2", "0.5") into
// millicores, rounding up. It must be greater than zero.
func ParseCPU(s string) (int64, error) {
	return parseQuantity(s, 1000, "cpu")
}

// ParseMemory parses a Kubernetes-style memory quantity ("128Mi", "1Gi",
// "500M") into bytes, rounding up. It must be greater than zero. The "m"
// suffix (thousandths of a byte) is refused: it is almost always a typo.
func ParseMemory(s string) (int64, error) {
	if m := quantity.FindStringSubmatch(s); m != nil && m[2] == "m" {
		return 0, fmt.Errorf("invalid memory quantity %q: \"m\" means thousandths of a byte; did you mean %sMi?", truncate(s), m[1])
	}
	return parseQuantity(s, 1, "memory")
}
