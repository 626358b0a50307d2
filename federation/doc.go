// Package federation is meshfed's placement and planning logic: which agent
// runs each instance of each function, how instances roll on a change, and
// what a mesh's status is. Pure functions over values: no I/O, no clocks
// (callers pass now), no goroutines.
package federation
