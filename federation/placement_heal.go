package federation

import (
	"fmt"
	"slices"
	"sort"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

// restartMove moves instance i of f, placed on its agent, to another agent
// of its cluster once it has restarted in.MoveAfterRestarts times or more
// there; the agent joins the assignment's avoid list, so the instance
// never returns to it. It returns nil when the instance stays: below the
// threshold, or no other agent can take it (it keeps restarting where it
// is, with the agent's backoff).
func restartMove(in Input, fl *fleet, m *meshfedv1.FunctionMesh, spec func(int) *meshfedv1.FunctionSpec, i int, a *meshfedv1.Assignment,
	d Demand, spread func() map[string]int) *meshfedv1.Assignment {
	n := a.GetStatus().GetRestarts()
	if in.MoveAfterRestarts <= 0 || int(n) < in.MoveAfterRestarts {
		return nil
	}
	from, cluster := a.GetSpec().GetAgent(), a.GetSpec().GetCluster()
	avoid := append(slices.Clone(a.GetSpec().GetAvoidAgents()), from)
	onAgent := spread()
	target, _ := fl.pick(cluster, d, onAgent, avoid)
	if target == "" {
		return nil
	}
	fl.count(a, -1)
	fl.byName[target].add(d, 1)
	onAgent[from]--
	onAgent[target]++
	na := newAssignment(m, spec(i), i, target, cluster, a)
	na.Spec.AvoidAgents = avoid
	na.Spec.MovedReason = fmt.Sprintf("restarted %d times on agent %s (threshold %d)", n, from, in.MoveAfterRestarts)
	return na
}

// rebalance moves at most in.RebalanceMoves instances from the fullest
// agents of each cluster to the emptiest, make-before-break (the new
// assignment names the old agent in spec.handover, which keeps running
// the instance until the new one reports Running). It runs only in a
// pass with nothing else to do, and leaves alone a cluster with an
// instance not Running: moves wait for the previous ones to land, so a
// joining agent fills at a bounded pace. A move is made only when it
// leaves the receiving agent emptier than the giving one was, so moves
// never oscillate; an instance moves only onto an agent holding fewer
// instances of its function than the giving agent (none, under
// placement.spread: agent), and never onto one it avoids.
func rebalance(in Input, fl *fleet) []*meshfedv1.Assignment {
	if in.RebalanceMoves <= 0 {
		return nil
	}
	fl.load()
	type fnKey struct{ tenant, namespace, mesh, function string }
	fnOf := func(a *meshfedv1.Assignment) fnKey {
		md := a.GetMetadata()
		return fnKey{md.GetTenant(), md.GetNamespace(), a.GetSpec().GetMesh(), a.GetSpec().GetFunction()}
	}
	byAgent := map[string][]*meshfedv1.Assignment{}
	fns := map[string]map[fnKey]int{}
	busy := map[string]bool{}
	for _, a := range in.Assignments {
		ag := fl.ready(a.GetSpec().GetAgent())
		if ag == nil {
			continue
		}
		if a.GetStatus().GetState() != StateRunning {
			busy[ag.Cluster] = true
		}
		byAgent[ag.Name] = append(byAgent[ag.Name], a)
		if fns[ag.Name] == nil {
			fns[ag.Name] = map[fnKey]int{}
		}
		fns[ag.Name][fnOf(a)]++
	}
	clusters := make([]string, 0, len(fl.byCluster))
	for c := range fl.byCluster {
		if !busy[c] {
			clusters = append(clusters, c)
		}
	}
	sort.Strings(clusters)
	var puts []*meshfedv1.Assignment
	for _, c := range clusters {
		for len(puts) < in.RebalanceMoves {
			var most, least *agentState
			for _, ag := range fl.byCluster[c] {
				if !ag.Ready {
					continue
				}
				if most == nil || ag.fullness() > most.fullness() {
					most = ag
				}
				if least == nil || ag.fullness() < least.fullness() {
					least = ag
				}
			}
			if most == nil || most == least {
				break
			}
			list := byAgent[most.Name]
			sort.Slice(list, func(i, j int) bool { return list[i].GetMetadata().GetName() < list[j].GetMetadata().GetName() })
			moved := -1
			for i, a := range list {
				d := fl.q.demandOf(a.GetSpec().GetFunctionSpec())
				k := fnOf(a)
				if a.GetStatus().GetState() != StateRunning || fns[least.Name][k] >= fns[most.Name][k] || d.Spread && fns[least.Name][k] > 0 ||
					slices.Contains(a.GetSpec().GetAvoidAgents(), least.Name) || least.fits(d) != nil || least.score(d) >= most.fullness() {
					continue
				}
				na := proto.CloneOf(a)
				na.Spec.Agent, na.Spec.Epoch, na.Spec.Handover = least.Name, a.GetSpec().GetEpoch()+1, most.Name
				na.Spec.MovedReason = fmt.Sprintf("rebalanced from agent %s (%d instances) to agent %s (%d)", most.Name, most.n, least.Name, least.n)
				na.Status = &meshfedv1.InstanceStatus{Index: a.GetSpec().GetIndex(), Agent: least.Name, Cluster: c, State: StatePending}
				puts = append(puts, na)
				most.add(d, -1)
				least.add(d, 1)
				fns[most.Name][k]--
				if fns[least.Name] == nil {
					fns[least.Name] = map[fnKey]int{}
				}
				fns[least.Name][k]++
				moved = i
				break
			}
			if moved < 0 {
				break // the fullest agent holds nothing the emptiest can take
			}
			byAgent[most.Name] = slices.Delete(list, moved, moved+1)
		}
	}
	return puts
}

// fullness is the agent's highest ratio of used to offered slots, CPU
// and memory.
func (a *agentState) fullness() float64 {
	s := float64(a.n) / float64(a.slots())
	if a.CPUMillis > 0 {
		s = max(s, float64(a.cpu)/float64(a.CPUMillis))
	}
	if a.MemoryBytes > 0 {
		s = max(s, float64(a.mem)/float64(a.MemoryBytes))
	}
	return s
}
