package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// waitPoll is how often apply --wait reads the meshes it waits for.
const waitPoll = 250 * time.Millisecond

// errWaitFailed marks a mesh that failed while apply --wait waited for it.
var errWaitFailed = errors.New("mesh failed")

// waitMeshes waits until every FunctionMesh among applied is Ready at the
// generation written, printing a line whenever one's progress changes. A
// mesh with a failed instance ends the wait with that instance's error.
func waitMeshes(ctx context.Context, c *client.Client, w io.Writer, applied []*meshfedv1.Object) error {
	type pending struct {
		md   *meshfedv1.ObjectMeta
		gen  uint64
		last string
	}
	var left []*pending
	for _, o := range applied {
		if o.GetFunctionMesh() == nil {
			continue
		}
		md := objects.Meta(o)
		left = append(left, &pending{md: md, gen: md.GetGeneration()})
	}
	for len(left) > 0 {
		var still []*pending
		for _, p := range left {
			name := objects.DisplayName(&meshfedv1.Object{Kind: &meshfedv1.Object_FunctionMesh{FunctionMesh: &meshfedv1.FunctionMesh{Metadata: p.md}}})
			resp, err := c.Get(ctx, &meshfedv1.GetRequest{Kind: objects.KindFunctionMesh, Tenant: p.md.GetTenant(), Namespace: p.md.GetNamespace(), Name: p.md.GetName()})
			if err != nil {
				return rpcError("wait for functionmesh "+name, err)
			}
			fm := resp.GetObject().GetFunctionMesh()
			if g := fm.GetMetadata().GetGeneration(); g > p.gen {
				return fmt.Errorf("functionmesh/%s: changed by someone else while waiting (generation %d, applied %d)", name, g, p.gen)
			}
			st := fm.GetStatus()
			current := st.GetObservedGeneration() >= p.gen
			line := fmt.Sprintf("functionmesh/%s: %s running", name, meshRunning(fm))
			if conds := conditionSummary(st.GetConditions()); current && conds != "" {
				line += ", " + conds
			}
			if line != p.last {
				fmt.Fprintln(w, line)
				p.last = line
			}
			if !current {
				still = append(still, p)
				continue
			}
			if failed := failedInstances(fm); failed != "" {
				return fmt.Errorf("functionmesh/%s: %w: %s", name, errWaitFailed, failed)
			}
			if !conditionTrue(st.GetConditions(), federation.ConditionReady) {
				still = append(still, p)
			}
		}
		if left = still; len(left) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			var names []string
			for _, p := range left {
				names = append(names, p.last)
			}
			return fmt.Errorf("gave up waiting (--wait-timeout): not Ready yet: %s", strings.Join(names, "; "))
		case <-time.After(waitPoll):
		}
	}
	return nil
}

// conditionSummary lists the conditions that are True, with their messages.
func conditionSummary(cs []*meshfedv1.Condition) string {
	var out []string
	for _, c := range cs {
		if c.GetStatus() != "True" {
			continue
		}
		s := c.GetType()
		if c.GetMessage() != "" && c.GetType() != federation.ConditionReady {
			s += " (" + c.GetMessage() + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func conditionTrue(cs []*meshfedv1.Condition, t string) bool {
	for _, c := range cs {
		if c.GetType() == t {
			return c.GetStatus() == "True"
		}
	}
	return false
}

// failedInstances names the instances in state Failed or OOMKilled, with their errors.
func failedInstances(fm *meshfedv1.FunctionMesh) string {
	var out []string
	for _, fs := range fm.GetStatus().GetFunctions() {
		for _, in := range fs.GetInstances() {
			if in.GetState() == federation.StateFailed || in.GetState() == federation.StateOOMKilled {
				out = append(out, fmt.Sprintf("%s#%d on %s: %s", fs.GetName(), in.GetIndex(), in.GetAgent(), or(in.GetLastError(), "no error reported")))
			}
		}
	}
	return strings.Join(out, "; ")
}
