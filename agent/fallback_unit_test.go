package agent

import (
	"errors"
	"strings"
	"testing"
)

func TestWatermarkKeys(t *testing.T) {
	p := "persistent://public/default/in-partition-3"
	if got := watermarkKey(p, false, 7); got != "__meshfed/watermark/persistent://public/default/in-partition-3" {
		t.Fatalf("failover subscription key %q", got)
	}
	if got := watermarkKey(p, true, 7); got != "__meshfed/watermark/persistent://public/default/in-partition-3#7" {
		t.Fatalf("shared subscription key %q", got)
	}
	keys := watermarkKeys(p)
	if len(keys) != 1+sharedWatermarkIndexes || keys[0] != watermarkKey(p, false, 0) || keys[len(keys)-1] != watermarkKey(p, true, sharedWatermarkIndexes-1) {
		t.Fatalf("keys a fallback reads: %v", keys)
	}
	for _, k := range keys {
		if checkUserKey(k) == nil {
			t.Fatalf("watermark key %q is not reserved", k)
		}
	}
}

func TestOldestWatermark(t *testing.T) {
	cases := []struct {
		name   string
		values map[string][]byte
		want   int64
		ok     bool
	}{
		{"none", nil, 0, false},
		{"one", map[string][]byte{"a": []byte("1700000000000")}, 1700000000000, true},
		{"the oldest of several", map[string][]byte{"a": []byte("1700000000500"), "b": []byte("1700000000100"), "c": []byte("1700000000900")}, 1700000000100, true},
		{"garbage and zero are ignored", map[string][]byte{"a": []byte("x"), "b": []byte("0"), "c": []byte("-5"), "d": []byte("42")}, 42, true},
		{"only garbage", map[string][]byte{"a": []byte("")}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := oldestWatermark(c.values)
			if got != c.want || ok != c.ok {
				t.Fatalf("oldestWatermark = %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestReservedStateKeysAreRefused(t *testing.T) {
	s := &fnState{} // no control plane: a refusal must come before any call
	for _, key := range []string{"__meshfed/watermark/x", "__meshfed/", "__meshfed/anything"} {
		if _, err := s.IncrCounter(t.Context(), key, 1); !errors.Is(err, ErrReservedStateKey) {
			t.Fatalf("IncrCounter(%q): %v", key, err)
		}
		if _, err := s.GetCounter(t.Context(), key); !errors.Is(err, ErrReservedStateKey) {
			t.Fatalf("GetCounter(%q): %v", key, err)
		}
		if err := s.PutState(t.Context(), key, []byte("v")); !errors.Is(err, ErrReservedStateKey) {
			t.Fatalf("PutState(%q): %v", key, err)
		}
		_, err := s.GetState(t.Context(), key)
		if !errors.Is(err, ErrReservedStateKey) || !strings.Contains(err.Error(), key) {
			t.Fatalf("GetState(%q): %v", key, err)
		}
	}
	for _, key := range []string{"__meshfed", "_meshfed/x", "meshfed/x", "x/__meshfed/"} {
		if err := checkUserKey(key); err != nil {
			t.Fatalf("%q refused: %v", key, err)
		}
	}
}

func TestEffectivelyOnceProducerNames(t *testing.T) {
	k := eoKey{partition: "persistent://public/default/in-partition-0", producer: "src", topic: "persistent://public/default/out"}
	n := eoName("public", "default", "m", "split", k)
	if !strings.HasPrefix(n, "meshfed-split-") || len(n) != len("meshfed-split-")+16 {
		t.Fatalf("name %q", n)
	}
	if eoName("public", "default", "m", "split", k) != n {
		t.Fatal("not deterministic")
	}
	seen := map[string]string{n: "base"}
	for what, other := range map[string]string{
		"tenant":    eoName("other", "default", "m", "split", k),
		"mesh":      eoName("public", "default", "m2", "split", k),
		"partition": eoName("public", "default", "m", "split", eoKey{"persistent://public/default/in-partition-1", k.producer, k.topic}),
		"producer":  eoName("public", "default", "m", "split", eoKey{k.partition, "src2", k.topic}),
		"topic":     eoName("public", "default", "m", "split", eoKey{k.partition, k.producer, "persistent://public/default/out2"}),
	} {
		if prev, dup := seen[other]; dup {
			t.Fatalf("changing the %s gives the name of %s: %q", what, prev, other)
		}
		seen[other] = what
	}
}
