// Package meshui serves the read-only web page /ui: each function mesh
// drawn as a graph of its functions and topics across clusters, with live
// rates, health and where each instance runs. The page is one HTML file
// with its script and style, embedded in the binary (no build step, nothing
// fetched from elsewhere); it polls a JSON view of the federation,
// /ui/api/meshes, that this package builds from the control plane's objects
// (View, pure) and serves through a Backend that authenticates callers and
// lists objects with the control plane's own authorization.
package meshui
