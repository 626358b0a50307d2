package lincheck

import (
	"math"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestModel(t *testing.T) {
	at := func(client int, in Input, out Output, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
	}
	put := func(v string) Input { return Input{Op: Put, Key: "k", Value: v} }
	get := Input{Op: Get, Key: "k"}
	cas := func(expect, v string) Input { return Input{Op: CAS, Key: "k", Expect: expect, Value: v} }
	never := int64(math.MaxInt64)
	tests := []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"read sees completed put", []porcupine.Operation{
			at(0, put("a"), Output{}, 0, 10),
			at(1, get, Output{Value: "a"}, 20, 30),
		}, porcupine.Ok},
		{"stale read after completed put", []porcupine.Operation{
			at(0, put("a"), Output{}, 0, 10),
			at(0, put("b"), Output{}, 11, 15),
			at(1, get, Output{Value: "a"}, 20, 30),
		}, porcupine.Illegal},
		{"concurrent read may see either", []porcupine.Operation{
			at(0, put("a"), Output{}, 0, 10),
			at(0, put("b"), Output{}, 11, 25),
			at(1, get, Output{Value: "a"}, 20, 30),
		}, porcupine.Ok},
		{"cas on current value applies", []porcupine.Operation{
			at(0, put("a"), Output{}, 0, 10),
			at(0, cas("a", "b"), Output{OK: true}, 11, 15),
			at(1, get, Output{Value: "b"}, 20, 30),
		}, porcupine.Ok},
		{"cas on replaced value must abort", []porcupine.Operation{
			at(0, put("a"), Output{}, 0, 10),
			at(0, put("b"), Output{}, 11, 15),
			at(0, cas("a", "c"), Output{OK: true}, 16, 18),
		}, porcupine.Illegal},
		{"abort on current value is wrong", []porcupine.Operation{
			at(0, put("a"), Output{}, 0, 10),
			at(0, cas("a", "b"), Output{}, 11, 15),
		}, porcupine.Illegal},
		{"unknown write may show up late", []porcupine.Operation{
			at(0, put("a"), Output{Unknown: true}, 0, never),
			at(1, get, Output{Value: ""}, 5, 10),
			at(1, get, Output{Value: "a"}, 50, 60),
		}, porcupine.Ok},
		{"unknown write may never show up", []porcupine.Operation{
			at(0, put("a"), Output{Unknown: true}, 0, never),
			at(1, put("b"), Output{}, 5, 10),
			at(1, get, Output{Value: "b"}, 50, 60),
		}, porcupine.Ok},
		{"unknown write cannot vanish once seen", []porcupine.Operation{
			at(0, put("a"), Output{Unknown: true}, 0, never),
			at(1, get, Output{Value: "a"}, 5, 10),
			at(1, get, Output{Value: ""}, 50, 60),
		}, porcupine.Illegal},
		{"unknown cas applies only on a match", []porcupine.Operation{
			at(0, put("a"), Output{}, 0, 1),
			at(0, put("b"), Output{}, 2, 3),
			at(1, cas("a", "c"), Output{Unknown: true}, 5, never),
			at(1, get, Output{Value: "c"}, 50, 60),
		}, porcupine.Illegal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(Model, tt.history, 10*time.Second); got != tt.want {
				t.Fatalf("check = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRegisterObjectRoundTrip(t *testing.T) {
	v, rv := Read(Object("k", "v1", 7))
	if v != "v1" || rv != 7 {
		t.Fatalf("Read(Object(k, v1, 7)) = %q, %d", v, rv)
	}
}
