// Package agent is meshfed's per-cluster agent: it registers with the
// control plane, heartbeats to keep its lease, watches the assignments made
// to it, and reconciles running function instances against them — level
// triggered, idempotent, fenced by epochs and the lease. Each instance
// consumes from its input cluster and produces to its output cluster with
// pulsar-client-go; under effectively_once its outputs carry sequence ids
// derived from what geo-replication keeps of each input (identity.go), so
// restarts, moves and failovers to a replicated copy write each output once.
package agent
