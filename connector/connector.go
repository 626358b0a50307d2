// Package connector is the SDK for sources and sinks: the connectors at a
// mesh's edges that bring an outside system's data into a topic (Source) or
// write a topic out (Sink). A connector implements one of the two small
// interfaces below and registers a factory under its type name; the agent
// runs it as an instance of the mesh, so placement, failover, fencing and
// policies treat it as they treat a function. Connectors in other languages
// speak the exec protocol instead (docs/exec-protocol.md).
package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Record is one message crossing a mesh's edge.
type Record struct {
	// Key is the message key; empty: none.
	Key string
	// Value is the message body.
	Value []byte
	// Properties are the message's user properties; nil: none.
	Properties map[string]string
	// EventTime is when the outside system saw the record; zero: unknown.
	EventTime time.Time
}

// SourceRecord is a record a source read, with the position to commit
// once the record is durable in the topic.
type SourceRecord struct {
	Record
	// Position is opaque to the agent: it hands it back to Commit after
	// the record and every record read before it were written to the
	// output topic. Empty: nothing to commit (the outside system keeps no
	// position, as for an HTTP webhook answered after the write).
	Position string
}

// SinkRecord is an input message a sink writes out, with its identity.
type SinkRecord struct {
	Record
	// Topic is the input topic (full persistent:// name) it came from.
	Topic string
	// Stream and Sequence identify the record across restarts, moves and
	// geo-replicated copies: within one Stream, Sequence only grows in
	// the order records are delivered. A sink that stores the highest
	// Sequence per Stream in the same transaction as its write, and skips
	// records at or below it, is effectively-once.
	Stream   string
	Sequence uint64
}

// Config is what a connector is started with.
type Config struct {
	// Tenant, Namespace, Mesh and Name name the connector; Instance is
	// its index among Replicas. The agent leaves Replicas zero (unknown):
	// an assignment carries its own index, not the replica count, so
	// scaling never restarts running instances.
	Tenant, Namespace, Mesh, Name string
	Instance, Replicas            int
	// Type is the registered connector type ("mqtt", "postgres", ...).
	Type string
	// Values is the connector's config as the user wrote it, with every
	// secret reference already resolved by the agent.
	Values map[string]any
	// EffectivelyOnce is set when the mesh asks for effectively_once.
	EffectivelyOnce bool
	// Logger writes to the agent's log.
	Logger *slog.Logger
}

// Source reads an outside system into a topic.
type Source interface {
	// Read blocks until records are ready or ctx ends; it returns them in
	// the order they must be written.
	Read(ctx context.Context) ([]SourceRecord, error)
	// Commit tells the source that every record up to and including the
	// one at position is durable in the output topic, so a restart may
	// resume after it.
	Commit(ctx context.Context, position string) error
	// Close stops the source; records read but not committed are read
	// again by the next instance.
	Close() error
}

// ConcurrentCommitter is implemented by a Source whose Commit may run on
// another goroutine while Read blocks. The agent then pipelines: it reads
// the next batch while earlier ones are being written, and commits each in
// order once durable. A Source without it is driven stop-and-wait: Read,
// write, Commit, Read again, never two calls at once.
type ConcurrentCommitter interface {
	Source
	// CommitsConcurrently reports whether Commit may overlap Read.
	CommitsConcurrently() bool
}

// Sink writes records out of a topic.
type Sink interface {
	// Write makes a batch durable in the outside system and returns only
	// then; the agent acknowledges the inputs after it returns nil. On an
	// error the batch is delivered again.
	Write(ctx context.Context, batch []SinkRecord) error
	// Close stops the sink.
	Close() error
}

// SourceFactory starts a source; Validate checks a config at apply time.
type SourceFactory struct {
	Open     func(ctx context.Context, cfg Config) (Source, error)
	Validate func(values map[string]any) error
}

// SinkFactory starts a sink; Validate checks a config at apply time.
type SinkFactory struct {
	Open     func(ctx context.Context, cfg Config) (Sink, error)
	Validate func(values map[string]any) error
}

// Validator is a Validate for a connector whose config is valid when
// decode accepts it: it returns decode's error.
func Validator[T any](decode func(values map[string]any) (T, error)) func(values map[string]any) error {
	return func(values map[string]any) error {
		_, err := decode(values)
		return err
	}
}

// ExecType is the type connector/execconn registers as a source and a
// sink: a program speaking the exec protocol. Placement names it here
// rather than import that package.
const ExecType = "exec"

// ErrUnknownType is returned for a connector type nobody registered.
var ErrUnknownType = errors.New("unknown connector type")

var (
	mu      sync.RWMutex
	sources = map[string]SourceFactory{}
	sinks   = map[string]SinkFactory{}
)

// RegisterSource makes a source type available; it panics on a duplicate
// name, as registering twice is a programming error caught at start-up.
func RegisterSource(name string, f SourceFactory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := sources[name]; dup {
		panic(fmt.Sprintf("connector: source type %q registered twice", name))
	}
	sources[name] = f
}

// RegisterSink makes a sink type available; it panics on a duplicate name.
func RegisterSink(name string, f SinkFactory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := sinks[name]; dup {
		panic(fmt.Sprintf("connector: sink type %q registered twice", name))
	}
	sinks[name] = f
}

// LookupSource returns the factory of a source type.
func LookupSource(name string) (SourceFactory, error) {
	mu.RLock()
	defer mu.RUnlock()
	f, ok := sources[name]
	if !ok {
		return SourceFactory{}, fmt.Errorf("%w %q (source types: %v)", ErrUnknownType, name, keys(sources))
	}
	return f, nil
}

// LookupSink returns the factory of a sink type.
func LookupSink(name string) (SinkFactory, error) {
	mu.RLock()
	defer mu.RUnlock()
	f, ok := sinks[name]
	if !ok {
		return SinkFactory{}, fmt.Errorf("%w %q (sink types: %v)", ErrUnknownType, name, keys(sinks))
	}
	return f, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Drain appends to batch what ch holds ready, without waiting, until batch
// has max elements: a source that received its first record blocking takes
// the rest of a burst into the same Read.
func Drain[T any](batch []T, ch <-chan T, max int) []T {
	for len(batch) < max {
		select {
		case v := <-ch:
			batch = append(batch, v)
		default:
			return batch
		}
	}
	return batch
}
