//go:build wasip1

// Command wordcount is meshfed's word-count as a WebAssembly function: it
// counts each word (the payload, or the key when the payload is empty) in
// the function's state through the host's incr_counter and emits
// "word count", keyed by the word. Build it with ../build.sh.
package main

import (
	"strconv"
	"strings"

	wasmsdk "github.com/meshfed/meshfed/sdk/wasm"
)

func init() { wasmsdk.Handle(count) }

// main never runs: a c-shared wasip1 module is a reactor.
func main() {}

func count(ctx *wasmsdk.Context, msg wasmsdk.Message) ([]wasmsdk.Output, error) {
	word := strings.TrimSpace(string(msg.Payload))
	if word == "" {
		word = msg.Key
	}
	if word == "" {
		return nil, nil
	}
	n, err := ctx.IncrCounter(word, 1)
	if err != nil {
		return nil, err
	}
	return []wasmsdk.Output{{Key: word, Payload: []byte(word + " " + strconv.FormatInt(n, 10))}}, nil
}
