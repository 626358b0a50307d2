// Package objects owns the meshfed object model around the generated API
// types: the kind registry and keys, decoding of user YAML/JSON documents with
// field-path errors, admission validation, and encoding for display. It is
// pure: no I/O beyond the bytes it is given, no clocks, no goroutines.
package objects
