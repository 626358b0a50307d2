// Package security holds meshfed's transport security: a small certificate
// authority (like Consul's `tls ca create` / `tls cert create`) issuing
// server, agent and client certificates, the TLS configurations for mutual
// TLS between servers, agents and the CLI, and the identity a peer's
// certificate proves. An agent certificate binds the agent to one cluster
// (URI SAN meshfed://agent/<cluster>/<name>), so it can register only there.
package security
