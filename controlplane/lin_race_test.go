//go:build race

package controlplane

// linRaceEnabled: the race detector is on (fewer linearizability runs by default).
const linRaceEnabled = true
