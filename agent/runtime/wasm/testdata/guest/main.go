//go:build wasip1

// Command guest is the test module of package wasm: identity, except for
// magic payloads that trap, loop, fail or exercise the host calls.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	wasmsdk "github.com/meshfed/meshfed/sdk/wasm"
)

func init() { wasmsdk.Handle(handle) }

func main() {}

// calls counts the messages this module instance has seen: a fresh
// instance starts at zero.
var calls int

var sink []byte

// kept is the payload of the last "keep" message.
var kept []byte

func handle(ctx *wasmsdk.Context, msg wasmsdk.Message) ([]wasmsdk.Output, error) {
	calls++
	cmd, arg, _ := strings.Cut(string(msg.Payload), " ")
	switch cmd {
	case "panic":
		panic("boom on purpose")
	case "oob":
		var a []int
		i, _ := strconv.Atoi(arg)
		return nil, fmt.Errorf("unreachable %d", a[i+3])
	case "loop":
		for {
			calls++
		}
	case "oom":
		// More than the host's 64 MiB memory cap in one go.
		sink = make([]byte, 128<<20)
		return out(strconv.Itoa(len(sink))), nil
	case "grow":
		// arg MiB, every page touched.
		mib, _ := strconv.Atoi(arg)
		sink = make([]byte, mib<<20)
		for i := 0; i < len(sink); i += 4096 {
			sink[i] = 1
		}
		return out(strconv.Itoa(len(sink))), nil
	case "exit":
		os.Exit(3)
	case "error":
		return nil, errors.New("refused: " + arg)
	case "keep":
		kept = msg.Payload
		return nil, nil
	case "kept":
		return out(string(kept)), nil
	case "calls":
		return out(strconv.Itoa(calls)), nil
	case "print":
		fmt.Println("to stdout:", arg)
		fmt.Fprintln(os.Stderr, "to stderr:", arg)
		ctx.Log(wasmsdk.LevelWarn, "via log: "+arg)
		return nil, nil
	case "state":
		// Round-trips a value of arg bytes through put_state/get_state,
		// deletes it, and counts.
		n, _ := strconv.Atoi(arg)
		v := bytes.Repeat([]byte{'v'}, n)
		if err := ctx.PutState("k", v); err != nil {
			return nil, err
		}
		got, err := ctx.GetState("k")
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(got, v) {
			return nil, fmt.Errorf("get_state returned %d bytes, want %d", len(got), n)
		}
		if err := ctx.PutState("k", nil); err != nil {
			return nil, err
		}
		if got, err := ctx.GetState("k"); err != nil || got != nil {
			return nil, fmt.Errorf("after delete: %q, %v", got, err)
		}
		if _, err := ctx.IncrCounter("c", 5); err != nil {
			return nil, err
		}
		c, err := ctx.GetCounter("c")
		if err != nil {
			return nil, err
		}
		return out(strconv.FormatInt(c, 10)), nil
	case "info":
		info, err := ctx.Info()
		if err != nil {
			return nil, err
		}
		return out(fmt.Sprintf("%s/%s/%s/%s/%d %s", info.Tenant, info.Namespace, info.Mesh, info.Function, info.InstanceIndex, info.ConfigJSON)), nil
	case "fields":
		return out(fmt.Sprintf("topic=%s key=%s props=%v event=%d publish=%d producer=%s seq=%d",
			msg.Topic, msg.Key, msg.Properties, msg.EventTime.UnixNano(), msg.PublishTime.UnixNano(), msg.ProducerName, msg.SequenceID)), nil
	case "many":
		n, _ := strconv.Atoi(arg)
		outs := make([]wasmsdk.Output, n)
		for i := range outs {
			outs[i] = wasmsdk.Output{Topic: "t" + strconv.Itoa(i%3), Key: strconv.Itoa(i), Payload: []byte(strconv.Itoa(i))}
		}
		return outs, nil
	}
	return []wasmsdk.Output{{Key: msg.Key, Payload: msg.Payload, Properties: msg.Properties}}, nil
}

func out(s string) []wasmsdk.Output { return []wasmsdk.Output{{Payload: []byte(s)}} }
