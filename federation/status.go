package federation

import (
	"fmt"
	"sort"
	"strings"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Condition types of a FunctionMesh.
const (
	ConditionReady       = "Ready"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"
	// ConditionFailedOver is True while some instance runs outside its
	// function's home cluster.
	ConditionFailedOver = "FailedOver"
)

// MeshStatus derives a mesh's status from its assignments. Conditions keep
// their lastTransitionTime from prev while their status does not change.
func MeshStatus(m *meshfedv1.FunctionMesh, assignments []*meshfedv1.Assignment, prev *meshfedv1.FunctionMeshStatus, now time.Time) *meshfedv1.FunctionMeshStatus {
	byFn := map[string][]*meshfedv1.Assignment{}
	for _, a := range assignments {
		byFn[a.GetSpec().GetFunction()] = append(byFn[a.GetSpec().GetFunction()], a)
	}
	// The autoscaler's decisions are its own, carried over.
	st := &meshfedv1.FunctionMeshStatus{ObservedGeneration: m.GetMetadata().GetGeneration(), Scale: prev.GetScale(), ScaleEvents: prev.GetScaleEvents()}
	var pending, failed, progressing, moved []string
	pendingWhy := map[string]bool{}
	for _, f := range objects.MeshFunctions(m.GetSpec()) {
		as := byFn[f.GetName()]
		sort.Slice(as, func(i, j int) bool { return as[i].GetSpec().GetIndex() < as[j].GetSpec().GetIndex() })
		fs := &meshfedv1.FunctionStatus{Name: f.GetName()}
		for _, a := range as {
			in := proto.Clone(a.GetStatus()).(*meshfedv1.InstanceStatus)
			if in == nil {
				in = &meshfedv1.InstanceStatus{}
			}
			in.Index, in.Agent, in.Cluster = a.GetSpec().GetIndex(), a.GetSpec().GetAgent(), a.GetSpec().GetCluster()
			in.MovedReason = a.GetSpec().GetMovedReason()
			if in.State == "" {
				in.State = StatePending
			}
			fs.Instances = append(fs.Instances, in)
			name := fmt.Sprintf("%s#%d", f.GetName(), in.Index)
			if home := PlacementCluster(f); a.GetSpec().GetAgent() != "" && a.GetSpec().GetCluster() != home {
				moved = append(moved, fmt.Sprintf("%s runs in %s instead of %s", name, a.GetSpec().GetCluster(), home))
			}
			switch {
			case in.GetAgent() == "":
				pending = append(pending, name)
				if why := a.GetStatus().GetLastError(); why != "" {
					pendingWhy[why] = true
				}
			case in.GetState() == StateRunning:
				fs.ReadyReplicas++
			case in.GetState() == StateFailed, in.GetState() == StateOOMKilled:
				failed = append(failed, name)
			default:
				progressing = append(progressing, name)
			}
		}
		if missing := DesiredReplicas(m, f) - len(f.GetStoppedInstances()) - len(as); missing > 0 {
			progressing = append(progressing, fmt.Sprintf("%s (%d not yet assigned)", f.GetName(), missing))
		}
		st.Functions = append(st.Functions, fs)
	}
	degraded := len(pending) > 0 || len(failed) > 0
	var degradedMsg []string
	if len(pending) > 0 {
		whys := make([]string, 0, len(pendingWhy))
		for w := range pendingWhy {
			whys = append(whys, w)
		}
		sort.Strings(whys)
		msg := "not running: " + strings.Join(pending, ", ")
		if len(whys) > 0 {
			msg += " (" + strings.Join(whys, "; ") + ")"
		}
		degradedMsg = append(degradedMsg, msg)
	}
	if len(failed) > 0 {
		degradedMsg = append(degradedMsg, "failed: "+strings.Join(failed, ", "))
	}
	ready := !degraded && len(progressing) == 0
	st.Conditions = []*meshfedv1.Condition{
		condition(prev, ConditionReady, ready, reason(ready, "AllInstancesRunning", "InstancesNotRunning"), "", now),
		condition(prev, ConditionProgressing, len(progressing) > 0, reason(len(progressing) > 0, "InstancesStarting", "Stable"), strings.Join(progressing, ", "), now),
		condition(prev, ConditionDegraded, degraded, reason(degraded, degradedReason(pending, failed, pendingWhy), "AsExpected"), strings.Join(degradedMsg, "; "), now),
		condition(prev, ConditionFailedOver, len(moved) > 0, reason(len(moved) > 0, "RunningInFallback", "AtHome"), strings.Join(moved, ", "), now),
	}
	return st
}

func degradedReason(pending, failed []string, whys map[string]bool) string {
	for w := range whys {
		if strings.HasPrefix(w, "policy: ") {
			return "PolicyViolation"
		}
	}
	if len(pending) > 0 {
		return "NotPlaced"
	}
	return "InstancesFailed"
}

func reason(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func condition(prev *meshfedv1.FunctionMeshStatus, typ string, ok bool, reason, msg string, now time.Time) *meshfedv1.Condition {
	status := "False"
	if ok {
		status = "True"
	}
	c := &meshfedv1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: timestamppb.New(now)}
	for _, p := range prev.GetConditions() {
		if p.GetType() == typ && p.GetStatus() == status {
			c.LastTransitionTime = p.GetLastTransitionTime()
		}
	}
	return c
}
