package objects

import (
	"maps"
	"slices"
	"strings"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// crdCPURules are Function Mesh's builtin CPU autoscaler rules and the
// CPU utilization (percent) each targets.
var crdCPURules = map[string]int32{
	"AverageUtilizationCPUPercent20": 20,
	"AverageUtilizationCPUPercent50": 50,
	"AverageUtilizationCPUPercent80": 80,
}

// crdAutoscaling converts a pod's builtinAutoscaler and
// autoScalingBehavior (path is the pod) into an autoscaling target; nil
// when the pod asks for no autoscaling. Memory rules and custom metrics
// have no meshfed equivalent and are errors naming the field.
func (w *walker) crdAutoscaling(path string, v any) *meshfedv1.Autoscaling {
	pod, ok := v.(map[string]any)
	if !ok {
		return nil // crdPod reported it
	}
	var as *meshfedv1.Autoscaling
	target := func() *meshfedv1.Autoscaling {
		if as == nil {
			as = &meshfedv1.Autoscaling{}
		}
		return as
	}
	if rules := pod["builtinAutoscaler"]; !isZero(rules) {
		rp := join(path, "builtinAutoscaler")
		list, ok := rules.([]any)
		if !ok {
			w.typeError(rp, "a list", rules)
		}
		for i, r := range list {
			s, _ := r.(string)
			pct, cpu := crdCPURules[s]
			switch {
			case cpu && target().CpuUtilization != 0:
				w.errs.add(index(rp, i), "a second CPU rule; keep one")
			case cpu:
				target().CpuUtilization = pct
			case strings.HasPrefix(s, "AverageUtilizationMemoryPercent"):
				w.errs.add(index(rp, i), "%s cannot be converted: meshfed scales on input backlog and CPU, not memory; remove it", s)
			default:
				w.errs.add(index(rp, i), "%s is not a builtin autoscaler rule (AverageUtilizationCPUPercent20, 50 or 80)", describe(r))
			}
		}
	}
	if !isZero(pod["autoScalingMetrics"]) {
		w.errs.add(join(path, "autoScalingMetrics"), "Kubernetes metric specs cannot be converted; use autoscaling: {backlogPerReplica: N, cpuUtilization: P} on the meshfed function")
	}
	if b := pod["autoScalingBehavior"]; !isZero(b) {
		bp := join(path, "autoScalingBehavior")
		obj, ok := w.object(bp, b)
		if !ok {
			return as
		}
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			kp := join(bp, key)
			rules, ok := obj[key].(map[string]any)
			if key != "scaleUp" && key != "scaleDown" || !ok {
				w.errs.add(kp, "%q has no meshfed equivalent; remove it", key)
				continue
			}
			for _, rk := range slices.Sorted(maps.Keys(rules)) {
				if rk != "stabilizationWindowSeconds" {
					w.errs.add(join(kp, rk), "%q has no meshfed equivalent (meshfed scales to the recommendation at once); remove it", rk)
					continue
				}
				secs, ok := w.integer(join(kp, rk), rules[rk], 32, true)
				if !ok {
					continue
				}
				if secs < 0 {
					w.errs.add(join(kp, rk), "must not be negative, got %d", secs)
					continue
				}
				d := (time.Duration(secs) * time.Second).String()
				if key == "scaleUp" {
					target().ScaleUpStabilization = d
				} else {
					target().ScaleDownStabilization = d
				}
			}
		}
	}
	return as
}
