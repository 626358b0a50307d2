package controlplane

import (
	"fmt"
	"net"
	"strconv"
)

// checkAdvertise validates an advertise address: host:port with a host
// peers can dial (a DNS name or an IP that is not 0.0.0.0 or ::) and a
// port from 1 to 65535.
func checkAdvertise(flag, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w (want host:port)", flag, addr, err)
	}
	if host == "" {
		return fmt.Errorf("%s %q: no host; give the DNS name or IP peers reach this server at", flag, addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%s %q: %s is not an address peers can dial; give the DNS name or IP they reach this server at", flag, addr, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%s %q: port must be a number from 1 to 65535", flag, addr)
	}
	return nil
}

// bindsAll reports whether a bind address listens on every interface
// (no host, 0.0.0.0 or ::), which peers cannot be told to dial.
func bindsAll(bind string) bool {
	host, _, err := net.SplitHostPort(bind)
	if err != nil {
		return false // reported when listening
	}
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}

// checkAddrPair checks a bind address and its advertise address before
// anything listens.
func checkAddrPair(bindFlag, bind, advFlag, advertise string) error {
	if advertise != "" {
		return checkAdvertise(advFlag, advertise)
	}
	if bindsAll(bind) {
		return fmt.Errorf("%s %s listens on every interface, which other servers cannot dial: "+
			"set %s to the DNS name or IP (with the port) they reach this server at "+
			"(in Kubernetes, the pod's stable name, e.g. meshfed-0.meshfed-headless.NAMESPACE.svc.cluster.local:PORT)",
			bindFlag, bind, advFlag)
	}
	return nil
}

// advertised is what peers are told to dial for a listener bound at bind:
// advertise when set, else bind's host as written (a name stays a name)
// with the listener's port (which port 0 chose).
func advertised(bind, advertise string, lis net.Addr) hostPort {
	if advertise != "" {
		return hostPort(advertise)
	}
	host, _, _ := net.SplitHostPort(bind)
	_, port, _ := net.SplitHostPort(lis.String())
	return hostPort(net.JoinHostPort(host, port))
}
