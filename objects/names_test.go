package objects

import (
	"strings"
	"testing"
)

func TestParseTopic(t *testing.T) {
	ok := []struct{ in, want string }{
		{"persistent://public/default/sentences", "persistent://public/default/sentences"},
		{"non-persistent://t/n/x", "non-persistent://t/n/x"},
		{"acme/streams/in", "persistent://acme/streams/in"},
		{"words", "persistent://public/default/words"},
		{"words-partition-0", "persistent://public/default/words-partition-0"},
		{"t_1/n.s=:x/top:ic", "persistent://t_1/n.s=:x/top:ic"},
	}
	for _, tc := range ok {
		got, err := ParseTopic(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseTopic(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, reason string }{
		{"", "the topic name is empty"},
		{"a/b", "expected topic or tenant/namespace/topic"},
		{"a/b/c/d", "expected topic or tenant/namespace/topic"},
		{"persistent://a/b", "expected tenant/namespace/topic after persistent://"},
		{"persistent://prop/cluster/ns/t", "expected tenant/namespace/topic"},
		{"kafka://a/b/c", `domain "kafka"`},
		{"a b/n/t", `tenant "a b"`},
		{"t//x", `namespace ""`},
		{"t/n/x\ty", "space or control character"},
		{"t/n/\xff", "space or control character"},
	}
	for _, tc := range bad {
		_, err := ParseTopic(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), "write persistent://tenant/namespace/topic") {
			t.Errorf("ParseTopic(%q) = %v, want an error with %q", tc.in, err, tc.reason)
		}
	}
}

func TestParseQuantities(t *testing.T) {
	cpu := []struct {
		in   string
		want int64
	}{{"500m", 500}, {"2", 2000}, {"0.5", 500}, {".25", 250}, {"1.", 1000}, {"1500u", 2}, {"1k", 1_000_000}}
	for _, tc := range cpu {
		if got, err := ParseCPU(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	mem := []struct {
		in   string
		want int64
	}{{"128Mi", 128 << 20}, {"1Gi", 1 << 30}, {"500M", 500_000_000}, {"1.5Ki", 1536}, {"100", 100}, {"1Ei", 1 << 60}}
	for _, tc := range mem {
		if got, err := ParseMemory(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	bad := []struct {
		in, reason string
		parse      func(string) (int64, error)
	}{
		{"", "write a number with an optional suffix, such as 500m or 2", ParseCPU},
		{"-1", "write a number", ParseCPU},
		{"1e3", "write a number", ParseCPU},
		{"1x", `unknown suffix "x"`, ParseCPU},
		{"2 cores", "write a number", ParseCPU},
		{"0", "must be greater than zero", ParseCPU},
		{"0m", "must be greater than zero", ParseCPU},
		{"9E", "too large", ParseCPU},
		{"128m", `did you mean 128Mi?`, ParseMemory},
		{"1Xi", `unknown suffix "Xi"`, ParseMemory},
		{"16Ei", "too large", ParseMemory},
		{"lots", "such as 128Mi or 1Gi", ParseMemory},
	}
	for _, tc := range bad {
		if _, err := tc.parse(tc.in); err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("parse(%q) = %v, want an error with %q", tc.in, err, tc.reason)
		}
	}
}

func TestCheckNames(t *testing.T) {
	for _, s := range []string{"a", "a-b", "0", "abc-123", strings.Repeat("x", 63)} {
		if r := checkDNSLabel(s); r != "" {
			t.Errorf("checkDNSLabel(%q) = %s", s, r)
		}
	}
	for _, s := range []string{"", "-", "a_b", "a.b", "A", "é", strings.Repeat("x", 64)} {
		if checkDNSLabel(s) == "" {
			t.Errorf("checkDNSLabel(%q) accepted", s)
		}
	}
	for _, k := range []string{"app", "example.com/app", "a.b_c-d", "A"} {
		if r := checkLabelKey(k); r != "" {
			t.Errorf("checkLabelKey(%q) = %s", k, r)
		}
	}
	for _, k := range []string{"", "/a", "a/", "EX.com/a", ".a", "a/b/c", strings.Repeat("x", 64)} {
		if checkLabelKey(k) == "" {
			t.Errorf("checkLabelKey(%q) accepted", k)
		}
	}
}
