//go:build wasip1

// Command wordsplit is meshfed's word-split as a WebAssembly function: one
// output per word of the payload, lower-cased and keyed by itself (the same
// outputs as the builtin word-split). Build it with ../build.sh.
package main

import (
	"strings"
	"unicode"

	wasmsdk "github.com/meshfed/meshfed/sdk/wasm"
)

func init() { wasmsdk.Handle(split) }

// main never runs: a c-shared wasip1 module is a reactor.
func main() {}

func split(_ *wasmsdk.Context, msg wasmsdk.Message) ([]wasmsdk.Output, error) {
	words := strings.FieldsFunc(string(msg.Payload), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
	out := make([]wasmsdk.Output, 0, len(words))
	for _, w := range words {
		w = strings.ToLower(w)
		out = append(out, wasmsdk.Output{Key: w, Payload: []byte(w)})
	}
	return out, nil
}
