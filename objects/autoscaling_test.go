package objects

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

func TestDecodeAutoscaling(t *testing.T) {
	doc := docWith(meshDoc, "      replicas: 2\n", `      minReplicas: 1
      maxReplicas: 4
      autoscaling: {backlogPerReplica: 1000, cpuUtilization: 70, scaleUpStabilization: 0s, scaleDownStabilization: 2m, interval: 5s}
`)
	objs, err := Decode("mesh.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(objs[0]); err != nil {
		t.Fatal(err)
	}
	as := objs[0].GetFunctionMesh().GetSpec().GetFunctions()[0].GetAutoscaling()
	if as.GetBacklogPerReplica() != 1000 || as.GetCpuUtilization() != 70 || as.GetScaleUpStabilization() != "0s" ||
		as.GetScaleDownStabilization() != "2m" || as.GetInterval() != "5s" {
		t.Errorf("autoscaling = %v", as)
	}
}

func TestValidateAutoscaling(t *testing.T) {
	p := "spec.functions[0]."
	with := func(min, max int32, as *meshfedv1.Autoscaling) *meshfedv1.FunctionMesh {
		return fn(func(f *meshfedv1.FunctionSpec) {
			f.Replicas, f.MinReplicas, f.MaxReplicas, f.Autoscaling = 0, min, max, as
		})
	}
	runValidate(t, []vcase{
		{"backlog", with(1, 4, &meshfedv1.Autoscaling{BacklogPerReplica: 1000}), nil},
		{"cpu with windows", with(2, 8, &meshfedv1.Autoscaling{CpuUtilization: 70, ScaleUpStabilization: "30s", ScaleDownStabilization: "5m", Interval: "10s"}), nil},
		{"no bounds", with(0, 0, &meshfedv1.Autoscaling{BacklogPerReplica: 1000}),
			[]wantErr{e(p+"minReplicas", "required with autoscaling"), e(p+"maxReplicas", "required with autoscaling")}},
		{"no room", with(3, 3, &meshfedv1.Autoscaling{BacklogPerReplica: 1000}),
			[]wantErr{e(p+"maxReplicas", "3 equals minReplicas")}},
		{"no signal", with(1, 4, &meshfedv1.Autoscaling{}),
			[]wantErr{e(p+"autoscaling", "set backlogPerReplica, cpuUtilization or both")}},
		{"bad numbers", with(1, 4, &meshfedv1.Autoscaling{BacklogPerReplica: -1, CpuUtilization: 170}),
			[]wantErr{e(p+"autoscaling.backlogPerReplica", "must not be negative"), e(p+"autoscaling.cpuUtilization", "between 1 and 100")}},
		{"bad durations", with(1, 4, &meshfedv1.Autoscaling{BacklogPerReplica: 10, ScaleUpStabilization: "soon", ScaleDownStabilization: "-1s", Interval: "0s"}),
			[]wantErr{e(p+"autoscaling.scaleUpStabilization", `"soon" is not a duration`),
				e(p+"autoscaling.scaleDownStabilization", "must be zero or more"),
				e(p+"autoscaling.interval", "must be greater than zero")}},
		{"stopped up to max", fn(func(f *meshfedv1.FunctionSpec) {
			f.Replicas, f.Autoscaling, f.StoppedInstances = 0, &meshfedv1.Autoscaling{BacklogPerReplica: 1}, []int32{3}
		}), nil},
	})
}

func TestDecodeCRDAutoscaling(t *testing.T) {
	head := "apiVersion: compute.functionmesh.io/v1alpha1\nkind: FunctionMesh\nmetadata: {name: m}\nspec:\n  functions:\n" +
		"    - name: f\n      className: c\n      input: {topics: [t]}\n      minReplicas: 1\n      maxReplicas: 4\n"
	objs, err := DecodeOptions{Cluster: "a"}.Decode("crd.yaml", []byte(head+`      pod:
        builtinAutoscaler: [AverageUtilizationCPUPercent80]
        autoScalingBehavior:
          scaleUp: {stabilizationWindowSeconds: 30}
          scaleDown: {stabilizationWindowSeconds: 300}
`))
	if err != nil {
		t.Fatal(err)
	}
	as := objs[0].GetFunctionMesh().GetSpec().GetFunctions()[0].GetAutoscaling()
	if as.GetCpuUtilization() != 80 || as.GetScaleUpStabilization() != "30s" || as.GetScaleDownStabilization() != "5m0s" {
		t.Errorf("autoscaling = %v", as)
	}
	for _, tc := range []struct {
		name, pod string
		want      []wantErr
	}{
		{"memory rule", "      pod: {builtinAutoscaler: [AverageUtilizationCPUPercent20, AverageUtilizationMemoryPercent80]}\n",
			[]wantErr{{1, "spec.functions[0].pod.builtinAutoscaler[1]", "not memory"}}},
		{"two cpu rules", "      pod: {builtinAutoscaler: [AverageUtilizationCPUPercent20, AverageUtilizationCPUPercent50]}\n",
			[]wantErr{{1, "spec.functions[0].pod.builtinAutoscaler[1]", "a second CPU rule"}}},
		{"metrics", "      pod: {autoScalingMetrics: [{type: Pods}]}\n",
			[]wantErr{{1, "spec.functions[0].pod.autoScalingMetrics", "cannot be converted"}}},
		{"policies", "      pod: {autoScalingBehavior: {scaleDown: {policies: [{type: Pods}]}}}\n",
			[]wantErr{{1, "spec.functions[0].pod.autoScalingBehavior.scaleDown.policies", "no meshfed equivalent"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeOptions{Cluster: "a"}.Decode("crd.yaml", []byte(head+tc.pod))
			checkErrs(t, err, "crd.yaml", tc.want)
		})
	}
}
