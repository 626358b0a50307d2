// Package postgres holds the PostgreSQL connectors, registered as type
// "postgres":
//
//   - a sink that writes records into a table, insert (COPY) or upsert by
//     key, one transaction per batch, effectively-once by storing the
//     highest input sequence per stream in the same transaction;
//   - a source that reads changes by logical replication (pgoutput, with a
//     publication and a replication slot it creates when missing) or, for
//     users without replication rights, by polling a table on an
//     incrementing column.
//
// docs/connectors-postgres.md is the user's guide.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/meshfed/meshfed/connector"
)

// Type is the connector type name both connectors register under.
const Type = "postgres"

func init() {
	connector.RegisterSink(Type, connector.SinkFactory{
		Open: func(ctx context.Context, cfg connector.Config) (connector.Sink, error) {
			s, err := OpenSink(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return s, nil
		},
		Validate: configErrors(ValidateSink),
	})
	connector.RegisterSource(Type, connector.SourceFactory{
		Open:     OpenSource,
		Validate: configErrors(ValidateSource),
	})
}

// configErrors turns the field errors of validate into the SDK's config
// errors, so that apply names them under the connector's config
// (spec.sinks[0].config.columns.temp).
func configErrors(validate func(map[string]any) error) func(map[string]any) error {
	return func(values map[string]any) error {
		err := validate(values)
		if err == nil {
			return nil
		}
		var out []error
		for _, e := range flatten(err) {
			if fe, ok := e.(*FieldError); ok {
				out = append(out, &connector.ConfigError{Key: fe.Path, Reason: fe.Reason})
			} else {
				out = append(out, e)
			}
		}
		return errors.Join(out...)
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []error{fe}
	}
	return []error{err}
}

// OpenSource opens the source in the mode its config names.
func OpenSource(ctx context.Context, cfg connector.Config) (connector.Source, error) {
	c, err := DecodeSourceConfig(cfg.Values)
	if err != nil {
		return nil, err
	}
	if c.Mode == ModePoll {
		s, err := OpenPollSource(ctx, cfg, c)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	// One replication slot streams to one reader at a time: a second
	// replica would only fail to start, or steal the slot on a restart.
	if cfg.Replicas > 1 {
		return nil, fmt.Errorf("postgres cdc source: %w", ErrOneReplica)
	}
	s, err := OpenCDCSource(ctx, cfg, c)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ErrOneReplica is returned when a cdc source is asked to run more than
// one replica.
var ErrOneReplica = errors.New("a cdc source runs as one replica (its replication slot has one reader); use replicas: 1 and failover clusters for availability")
