// Package broker owns meshfed's embedded broker: a single-node server that
// speaks the Apache Pulsar binary protocol well enough for the unmodified
// pulsar-client-go to produce and consume against it, stores persistent
// topics on local disk (an append-only segment log per topic partition plus
// one cursor file per durable subscription), de-duplicates producers by name
// and sequence id, and serves the small part of the Pulsar admin REST API
// that tools and tests use. See docs/broker.md for the design.
package broker
