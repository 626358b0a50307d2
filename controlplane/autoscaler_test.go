package controlplane

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

func TestAutoscalerDecide(t *testing.T) {
	t0 := time.Unix(1000, 0)
	mesh := &meshfedv1.FunctionMesh{
		Metadata: &meshfedv1.ObjectMeta{Name: "m", Tenant: "public", Namespace: "default"},
		Spec: &meshfedv1.FunctionMeshSpec{Functions: []*meshfedv1.FunctionSpec{
			{Name: "f", MinReplicas: 1, MaxReplicas: 4, ProcessingGuarantee: "effectively_once",
				Autoscaling: &meshfedv1.Autoscaling{BacklogPerReplica: 1000, CpuUtilization: 70, ScaleDownStabilization: "10s"}},
			{Name: "fixed", Replicas: 2},
		}},
	}
	as := newAutoscaler(slog.New(slog.DiscardHandler))
	noCPU := func(*meshfedv1.FunctionMesh, *meshfedv1.FunctionSpec) (int64, int) { return 0, 0 }
	hot := func(*meshfedv1.FunctionMesh, *meshfedv1.FunctionSpec) (int64, int) { return 400, 2 }
	step := func(at time.Duration, backlog int64, cpu func(*meshfedv1.FunctionMesh, *meshfedv1.FunctionSpec) (int64, int)) *meshfedv1.FunctionMesh {
		t.Helper()
		as.samples[fnKey(mesh, mesh.Spec.Functions[0])] = measured{at: t0.Add(at), backlog: backlog, parts: 4}
		changed := as.decide([]*meshfedv1.FunctionMesh{mesh}, cpu, t0.Add(at))
		if len(changed) == 0 {
			return nil
		}
		mesh = changed[0]
		return mesh
	}
	if m := step(0, 200000, noCPU); m.GetStatus().GetScale()["f"] != 4 || len(m.GetStatus().GetScaleEvents()) != 1 {
		t.Fatalf("burst: status = %v", m.GetStatus())
	}
	ev := mesh.GetStatus().GetScaleEvents()[0]
	if ev.GetFrom() != 1 || ev.GetTo() != 4 || ev.GetBacklog() != 200000 || !strings.Contains(ev.GetReason(), "wants 200; within 1..4: 4") {
		t.Errorf("event = %v", ev)
	}
	if _, ok := mesh.GetStatus().GetScale()["fixed"]; ok {
		t.Error("a function without autoscaling has a scale")
	}
	if m := step(time.Second, 0, noCPU); m != nil {
		t.Fatalf("scaled down inside the window: %v", m.GetStatus())
	}
	if m := step(5*time.Second, 0, hot); m != nil {
		t.Fatalf("scaled down with busy CPU: %v", m.GetStatus())
	}
	if m := step(12*time.Second, 0, noCPU); m != nil {
		t.Fatalf("scaled down before the window after the CPU sample: %v", m.GetStatus())
	}
	if m := step(21*time.Second, 0, noCPU); m != nil {
		t.Fatalf("scaled down less than 10s after the busy sample stopped being the newest: %v", m.GetStatus())
	}
	m := step(22*time.Second, 0, noCPU)
	if m.GetStatus().GetScale()["f"] != 1 || len(m.GetStatus().GetScaleEvents()) != 2 {
		t.Fatalf("drained: status = %v", m.GetStatus())
	}
	if ev := m.GetStatus().GetScaleEvents()[1]; ev.GetFrom() != 4 || ev.GetTo() != 1 || !strings.Contains(ev.GetReason(), "below 4 for 10s") {
		t.Errorf("event = %v", ev)
	}
	if m := step(23*time.Second, 0, noCPU); m != nil {
		t.Errorf("steady state wrote %v", m.GetStatus())
	}
}
