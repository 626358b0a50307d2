// Package testkit holds what tests across the module share: Eventually,
// which polls a condition until a deadline, builders of the objects tests
// apply again and again (clusters, tenants, namespaces, meshes), and
// connector configs with the check of a Validate's errors.
//
// It does not import package testing: production packages may hold test
// helpers built on it (controlplane's test servers) without linking testing
// into the binary. Helpers take a TB, which *testing.T, *testing.B and
// *testing.F satisfy.
package testkit
