package broker

import (
	"fmt"
	"strconv"
	"strings"
)

const partitionSuffix = "-partition-"

// topicName is a parsed Pulsar topic name.
type topicName struct {
	domain    string // "persistent" or "non-persistent"
	tenant    string
	namespace string
	local     string // includes the -partition-N suffix when partition >= 0
	partition int    // -1 when the name is not a partition
}

// parseTopic accepts "domain://tenant/ns/local", "tenant/ns/local" and
// "local" (meaning public/default), as the clients do.
func parseTopic(s string) (topicName, error) {
	t := topicName{domain: "persistent", partition: -1}
	rest := s
	if i := strings.Index(s, "://"); i >= 0 {
		t.domain, rest = s[:i], s[i+3:]
		if t.domain != "persistent" && t.domain != "non-persistent" {
			return t, fmt.Errorf("invalid topic domain in %q", s)
		}
	} else if !strings.Contains(s, "/") {
		rest = "public/default/" + s
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return t, fmt.Errorf("invalid topic name %q", s)
	}
	t.tenant, t.namespace, t.local = parts[0], parts[1], parts[2]
	if !validName(t.tenant) || !validName(t.namespace) || strings.ContainsAny(t.local, "\x00\n") || len(t.local) > 1024 {
		return t, fmt.Errorf("invalid topic name %q", s)
	}
	if i := strings.LastIndex(t.local, partitionSuffix); i > 0 {
		if n, err := strconv.Atoi(t.local[i+len(partitionSuffix):]); err == nil && n >= 0 {
			t.partition = n
		}
	}
	return t, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '=', r == ':':
		default:
			return false
		}
	}
	return true
}

func (t topicName) String() string {
	return t.domain + "://" + t.tenant + "/" + t.namespace + "/" + t.local
}

// ns is "tenant/namespace".
func (t topicName) ns() string { return t.tenant + "/" + t.namespace }

// base is the partitioned topic a partition belongs to (itself otherwise).
func (t topicName) base() topicName {
	if t.partition < 0 {
		return t
	}
	b := t
	b.local = t.local[:strings.LastIndex(t.local, partitionSuffix)]
	b.partition = -1
	return b
}

// partitionName is the name of partition i of t.
func (t topicName) partitionName(i int) topicName {
	p := t
	p.local = t.local + partitionSuffix + strconv.Itoa(i)
	p.partition = i
	return p
}
