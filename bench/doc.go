// Package bench measures the control plane: write throughput and latency of
// 1 KiB objects on a 3-node loopback cluster at several concurrency levels,
// the same load against a 3-member etcd cluster for comparison, and the time
// one write takes to reach many open watch streams. `meshfed bench apply`
// and the Benchmark functions of this package drive it.
package bench
