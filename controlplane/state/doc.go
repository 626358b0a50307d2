// Package state is the control plane's in-memory state store: every object,
// indexed by kind and scope, with a revision per write, a bounded history of
// change events for watches, and snapshots. It knows nothing of Raft: writers
// pass the log index to use as the revision, and the FSM adapts one to the other.
package state
