// Package auth owns the broker's authentication providers, configured and
// behaving as Apache Pulsar's: tokens (JWTs signed with a secret key or a
// key pair; the role is a claim, "sub" by default), TLS client certificates
// (the role is the subject's common name) and basic authentication against
// an htpasswd file. Each provider checks the credentials of a binary-protocol
// connection (CONNECT and AUTH_RESPONSE data, the TLS session) and of an HTTP
// request (Authorization header, client certificate). It also holds the
// parsers of what those providers read from outside: JWTs, key URLs and
// htpasswd files. The broker package decides what a role may do.
package auth
