// Package functionsapi serves Pulsar's Functions admin REST API (v3,
// /admin/v3/functions) on top of meshfed's objects: a Pulsar function is a
// FunctionMesh of one function of the same name in the same tenant and
// namespace. It decodes FunctionConfig JSON and multipart bodies, maps
// them onto FunctionMesh specs (refusing, with the field named, anything
// meshfed cannot honour), and answers in Pulsar's JSON shapes
// (FunctionConfig, FunctionStatus, FunctionStats, FunctionState) so that
// Pulsar's admin clients decode them. The control plane supplies a Backend
// that authenticates callers and serves the object, package and state
// calls with its own authorization and leader forwarding.
package functionsapi
