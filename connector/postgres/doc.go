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
		Validate: ValidateSink,
	})
}
