// Package lincheck holds the register model the linearizability tests
// check histories against with porcupine: one register per key, written by
// puts and compare-and-sets, read by gets, where a write whose outcome the
// client cannot know may take effect at any point after its call, or never.
package lincheck

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// OpKind is what an operation does.
type OpKind uint8

const (
	// Get reads a register.
	Get OpKind = iota
	// Put writes a register unconditionally.
	Put
	// CAS writes a register if it still holds Input.Expect.
	CAS
)

// Input is one operation on one register.
type Input struct {
	Op  OpKind
	Key string
	// Value is the value a put or CAS writes. Every write of a history
	// writes a distinct value, so a value identifies the write.
	Value string
	// Expect is, for a CAS, the value the register must hold for the
	// write to apply ("" is an absent register).
	Expect string
}

// Output is what the client saw.
type Output struct {
	// Value read by a get; "" means the register is absent (NotFound).
	Value string
	// OK reports whether a CAS applied (false: it was refused).
	OK bool
	// Unknown marks a write whose outcome the client cannot know; its
	// operation's Return must be math.MaxInt64.
	Unknown bool
}

// Model is a register per key, initially absent ("").
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(st, in, out any) (bool, any) {
		cur, i, o := st.(string), in.(Input), out.(Output)
		switch i.Op {
		case Get:
			return o.Value == cur, cur
		case Put:
			return true, i.Value
		case CAS:
			match := cur == i.Expect
			switch {
			case o.Unknown:
				// Had it reached the leader here, it would have applied
				// exactly when the precondition held. (Porcupine may also
				// linearize it after everything else: it never returned.)
				if match {
					return true, i.Value
				}
				return true, cur
			case o.OK:
				return match, i.Value
			default:
				return !match, cur
			}
		}
		return false, cur
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(Input), out.(Output)
		switch i.Op {
		case Get:
			return fmt.Sprintf("get(%s) -> %q", i.Key, o.Value)
		case Put:
			if o.Unknown {
				return fmt.Sprintf("put(%s, %q) -> ?", i.Key, i.Value)
			}
			return fmt.Sprintf("put(%s, %q)", i.Key, i.Value)
		default:
			res := "refused"
			switch {
			case o.Unknown:
				res = "?"
			case o.OK:
				res = "ok"
			}
			return fmt.Sprintf("cas(%s, %q -> %q) -> %s", i.Key, i.Expect, i.Value, res)
		}
	},
	DescribeState: func(st any) string { return fmt.Sprintf("%q", st) },
}
