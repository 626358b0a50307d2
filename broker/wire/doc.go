// Package wire owns the Pulsar binary protocol as the meshfed broker speaks
// it: frame layout (total size, command size, command, optional checksummed
// headers and payload), the protobuf messages of the commands the broker
// implements (decoded and encoded by hand with protowire from the
// protocol's documented field numbers), and the message metadata fields the
// broker needs to look at. Nothing here does I/O beyond reading and writing
// frames on a bufio stream.
package wire
