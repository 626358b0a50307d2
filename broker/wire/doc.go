// Package wire owns the Pulsar binary protocol as the meshfed broker speaks
// it: frame layout (total size, command size, command, optional checksummed
// headers and payload), the protobuf messages of the commands the broker
// implements (decoded and encoded by hand with protowire from the
// protocol's documented field numbers), the producer side of the protocol
// the broker speaks as a client (replicators, the health check), and the
// message metadata fields the broker needs to look at or add
// (replicated_from). Nothing here does I/O beyond reading and writing
// frames on a bufio stream.
package wire
