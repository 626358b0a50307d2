package agent

import (
	"errors"
	"fmt"
	"time"
)

// Ready reports whether the agent serves its cluster: it has registered
// with the control plane and holds a valid lease (its last successful
// heartbeat was sent less than a lease ago). It returns a summary when
// ready, else why not. It backs the agent's /readyz.
func (a *Agent) Ready() (string, error) {
	lease := time.Duration(a.leaseNanos.Load())
	if lease <= 0 {
		return "", errors.New("not registered with the control plane yet")
	}
	since := a.cfg.Now().Sub(time.Unix(0, a.lastRenewed.Load()))
	if !a.leaseValid() {
		return "", fmt.Errorf("no successful heartbeat for %s (the lease is %s); instances are stopped until one succeeds", since.Round(time.Millisecond), lease)
	}
	return fmt.Sprintf("agent %s of cluster %s registered, last heartbeat %s ago (lease %s)", a.cfg.Name, a.cfg.Cluster, since.Round(time.Millisecond), lease), nil
}
