// Package controlplane is the meshfed server: Raft replication (hashicorp/raft,
// its log in controlplane/logstore or raft-boltdb/v2), the FSM adapting the log to the state store, the gRPC
// endpoints (forwarding writes to the leader), leader-only duties, and the
// metrics, health and tracing endpoints.
package controlplane
