//go:build race

package wasm

// raceEnabled: under the race detector wazero's own compiler runs ~10×
// slower (15 s for a Go module), so tests that load Go-built modules use
// the interpreter then; the compiler is still exercised with the small
// hand-assembled modules.
const raceEnabled = true
