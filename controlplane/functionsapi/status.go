package functionsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"unicode/utf8"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// stateRunning is the instance state agents report for a running instance.
const stateRunning = "Running"

// instances returns the function's instance count and its instances'
// statuses by index (an instance not placed, or stopped, has none).
func instances(m *meshfedv1.FunctionMesh) (int, map[int]*meshfedv1.InstanceStatus) {
	f := m.GetSpec().GetFunctions()[0]
	n := max(int(f.GetReplicas()), 1)
	byIndex := map[int]*meshfedv1.InstanceStatus{}
	for _, fs := range m.GetStatus().GetFunctions() {
		if fs.GetName() != f.GetName() {
			continue
		}
		for _, in := range fs.GetInstances() {
			if i := int(in.GetIndex()); i < n {
				byIndex[i] = in
			}
		}
	}
	return n, byIndex
}

// InstanceStatus is Pulsar's status of one instance from what its agent
// last reported (nil: not placed, or stopped).
func InstanceStatus(in *meshfedv1.InstanceStatus) utils.FunctionInstanceStatusData {
	return utils.FunctionInstanceStatusData{
		Running:                  in.GetState() == stateRunning,
		Err:                      in.GetLastError(),
		NumReceived:              int64(in.GetReceived()),
		NumSuccessfullyProcessed: int64(in.GetProcessed()),
		NumUserExceptions:        int64(in.GetFailed()),
		WorkerID:                 in.GetAgent(),
		LatestUserExceptions:     []utils.ExceptionInformation{},
		LatestSystemExceptions:   []utils.ExceptionInformation{},
	}
}

// Status is Pulsar's FunctionStatus of a one-function mesh.
func Status(m *meshfedv1.FunctionMesh) utils.FunctionStatus {
	n, byIndex := instances(m)
	st := utils.FunctionStatus{NumInstances: n, Instances: []utils.FunctionInstanceStatus{}}
	for i := range n {
		d := InstanceStatus(byIndex[i])
		if d.Running {
			st.NumRunning++
		}
		st.Instances = append(st.Instances, utils.FunctionInstanceStatus{InstanceID: i, Status: d})
	}
	return st
}

// instanceStats is Pulsar's stats of one instance from its counters.
func instanceStats(in *meshfedv1.InstanceStatus) utils.FunctionInstanceStatsData {
	base := utils.FunctionInstanceStatsDataBase{
		ReceivedTotal:              int64(in.GetReceived()),
		ProcessedSuccessfullyTotal: int64(in.GetProcessed()),
		UserExceptionsTotal:        int64(in.GetFailed()),
	}
	return utils.FunctionInstanceStatsData{FunctionInstanceStatsDataBase: base, UserMetrics: map[string]float64{}}
}

// Stats is Pulsar's FunctionStats of a one-function mesh: totals over its
// instances of the counters the control plane keeps.
func Stats(m *meshfedv1.FunctionMesh) utils.FunctionStats {
	n, byIndex := instances(m)
	var st utils.FunctionStats
	st.Instances = []utils.FunctionInstanceStats{}
	for i := range n {
		d := instanceStats(byIndex[i])
		st.Instances = append(st.Instances, utils.FunctionInstanceStats{FunctionInstanceStatsDataBase: d.FunctionInstanceStatsDataBase, InstanceID: int64(i), Metrics: d})
	}
	return *st.CalculateOverall()
}

func (h *Handler) status(ctx context.Context, w http.ResponseWriter, f fn) error {
	m, err := h.mesh(ctx, f)
	if err != nil {
		return err
	}
	if f.instance < 0 {
		return writeJSON(w, http.StatusOK, Status(m))
	}
	n, byIndex := instances(m)
	if f.instance >= n {
		return notFound("instance %d of %s/%s/%s doesn't exist (it has %d instances)", f.instance, f.tenant, f.namespace, f.name, n)
	}
	return writeJSON(w, http.StatusOK, InstanceStatus(byIndex[f.instance]))
}

func (h *Handler) stats(ctx context.Context, w http.ResponseWriter, f fn) error {
	m, err := h.mesh(ctx, f)
	if err != nil {
		return err
	}
	if f.instance < 0 {
		return writeJSON(w, http.StatusOK, Stats(m))
	}
	n, byIndex := instances(m)
	if f.instance >= n {
		return notFound("instance %d of %s/%s/%s doesn't exist (it has %d instances)", f.instance, f.tenant, f.namespace, f.name, n)
	}
	return writeJSON(w, http.StatusOK, instanceStats(byIndex[f.instance]))
}

func (h *Handler) getState(ctx context.Context, w http.ResponseWriter, f fn, key string) error {
	if _, err := h.mesh(ctx, f); err != nil {
		return err
	}
	vals, err := h.b.GetState(ctx, f.scope(), []string{key})
	if err != nil {
		return err
	}
	if len(vals) == 0 || !vals[0].GetExists() {
		return notFound("key %q doesn't exist in the state of %s/%s/%s", key, f.tenant, f.namespace, f.name)
	}
	v := vals[0]
	st := utils.FunctionState{Key: key}
	switch {
	case v.GetIsCounter():
		st.NumValue = v.GetCounter()
	case utf8.Valid(v.GetValue()):
		st.StringValue = string(v.GetValue())
	default:
		st.ByteValue = v.GetValue()
	}
	return writeJSON(w, http.StatusOK, st)
}

func (h *Handler) putState(ctx context.Context, w http.ResponseWriter, r *http.Request, f fn, key string) error {
	form, err := h.form(r)
	if err != nil {
		return err
	}
	if form.State == nil {
		return badRequest("state: required (FunctionState JSON)")
	}
	var st utils.FunctionState
	if err := decodeStrict(form.State, &st); err != nil {
		return badRequest("state: %v", err)
	}
	if st.Key != "" && st.Key != key {
		return badRequest("state.key %q differs from the path's %q", st.Key, key)
	}
	if st.NumValue != 0 {
		return unsupported("state.numberValue", "meshfed changes counters only by increments from the function (incrCounter)")
	}
	if st.Version != 0 {
		return unsupported("state.version", "meshfed's state has no versions to compare")
	}
	val := st.ByteValue
	if val == nil {
		if st.StringValue == "" {
			return badRequest("state: stringValue or byteValue required")
		}
		val = []byte(st.StringValue)
	} else if st.StringValue != "" {
		return badRequest("state: give stringValue or byteValue, not both")
	}
	if _, err := h.mesh(ctx, f); err != nil {
		return err
	}
	if err := h.b.PutState(ctx, f.scope(), []*meshfedv1.StateOp{{Key: key, Op: &meshfedv1.StateOp_Put{Put: val}}}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
