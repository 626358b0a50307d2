package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meshfed/meshfed/controlplane/state"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// objectEndpoint serves ObjectService.
type objectEndpoint struct {
	meshfedv1.UnimplementedObjectServiceServer
	srv *Server
}

// watchProgressInterval is how often an idle watch reports the revision it covers.
var watchProgressInterval = 5 * time.Second

func (e *objectEndpoint) Apply(ctx context.Context, req *meshfedv1.ApplyRequest) (*meshfedv1.ApplyResponse, error) {
	if len(req.GetObjects()) == 0 {
		return nil, refuse(ErrInvalidArgument, "objects: at least one object is required")
	}
	var errs []error
	for i, o := range req.GetObjects() {
		k := objects.KindOf(o)
		if k == nil {
			errs = append(errs, fmt.Errorf("objects[%d]: empty object (set one kind)", i))
			continue
		}
		if k.System {
			errs = append(errs, fmt.Errorf("objects[%d]: kind %s is written by the control plane only", i, k.Name))
			continue
		}
		fillTypeMeta(o)
		if err := objects.Validate(o); err != nil {
			errs = append(errs, objects.AsFieldErrors(err).In("", i+1))
		} else if err := checkConnectors(o); err != nil {
			errs = append(errs, objects.AsFieldErrors(err).In("", i+1))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, refuse(ErrInvalidArgument, err.Error())
	}
	const method = meshfedv1.ObjectService_Apply_FullMethodName
	targets := make([]*meshfedv1.AuditTarget, 0, len(req.GetObjects()))
	var actions []string
	for _, o := range req.GetObjects() {
		t := targetOf(o)
		action, _ := policies.WriteAction(t.GetKind())
		if err := e.srv.authorize(ctx, method, action, t); err != nil {
			return nil, err
		}
		targets = append(targets, t)
		if !slices.Contains(actions, string(action)) {
			actions = append(actions, string(action))
		}
	}
	resp := &meshfedv1.ApplyResponse{}
	if done, err := e.srv.forward(ctx, method, req, resp); done {
		return resp, err
	}
	entry := &raftlogv1.ApplyObjects{Objects: req.GetObjects(), Now: timestamppb.Now()}
	if !req.GetDryRun() {
		entry.Audit = e.srv.auditEntry(ctx, method, policies.Action(strings.Join(actions, ",")), targets...)
	}
	var res *state.ApplyResult
	if req.GetDryRun() {
		st := e.srv.fsm.State()
		r, err := st.Apply(st.Revision(), entry, true)
		if err != nil {
			return nil, toStatus(err)
		}
		res = r
	} else {
		r, err := e.srv.raftApply(ctx, ApplyObjectsType, entry)
		e.srv.logWrite(entry.Audit, err)
		if err != nil {
			return nil, toStatus(err)
		}
		res = r.apply
	}
	if req.GetBrief() {
		return &meshfedv1.ApplyResponse{Revision: res.Revision, Results: res.Results}, nil
	}
	return &meshfedv1.ApplyResponse{Revision: res.Revision, Objects: res.Objects, Results: res.Results}, nil
}

func (e *objectEndpoint) Get(ctx context.Context, req *meshfedv1.GetRequest) (*meshfedv1.GetResponse, error) {
	k, err := objects.LookupKind(req.GetKind())
	if err != nil {
		return nil, refuse(ErrInvalidArgument, "kind: "+err.Error())
	}
	if req.GetName() == "" {
		return nil, refuse(ErrInvalidArgument, "name: required")
	}
	if err := scopeArgs(k, req.GetTenant(), req.GetNamespace(), true); err != nil {
		return nil, err
	}
	action, _ := policies.ReadAction(k.Name)
	if err := e.srv.authorize(ctx, meshfedv1.ObjectService_Get_FullMethodName, action,
		&meshfedv1.AuditTarget{Kind: k.Name, Tenant: req.GetTenant(), Namespace: req.GetNamespace(), Name: req.GetName()}); err != nil {
		return nil, err
	}
	if !req.GetStale() {
		resp := &meshfedv1.GetResponse{}
		if done, err := e.srv.forward(ctx, meshfedv1.ObjectService_Get_FullMethodName, req, resp); done {
			return resp, err
		}
		if err := e.srv.consistentRead(ctx); err != nil {
			return nil, toStatus(err)
		}
	}
	o, rev, err := e.srv.fsm.State().Get(k.Name, req.GetTenant(), req.GetNamespace(), req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	if e.srv.IsLeader() {
		o = e.srv.live.overlay(o)
	}
	return &meshfedv1.GetResponse{Object: o, Revision: rev}, nil
}

func (e *objectEndpoint) List(ctx context.Context, req *meshfedv1.ListRequest) (*meshfedv1.ListResponse, error) {
	f, kinds, err := narrowFilter(req.GetKind(), req.GetKinds(), req.GetTenant(), req.GetNamespace(), req.GetLabelSelector(), req.GetAgent(), false)
	if err != nil {
		return nil, err
	}
	for _, k := range kinds {
		if err := e.srv.authorizeRange(ctx, meshfedv1.ObjectService_List_FullMethodName, k, req.GetTenant(), req.GetNamespace()); err != nil {
			return nil, err
		}
	}
	if !req.GetStale() {
		resp := &meshfedv1.ListResponse{}
		if done, err := e.srv.forward(ctx, meshfedv1.ObjectService_List_FullMethodName, req, resp); done {
			return resp, err
		}
		if err := e.srv.consistentRead(ctx); err != nil {
			return nil, toStatus(err)
		}
	}
	objs, rev, err := e.srv.fsm.State().List(f)
	if err != nil {
		return nil, toStatus(err)
	}
	objs = slices.DeleteFunc(objs, func(o *meshfedv1.Object) bool { return !e.srv.allowed(ctx, o) })
	if e.srv.IsLeader() {
		for i, o := range objs {
			objs[i] = e.srv.live.overlay(o)
		}
	}
	return &meshfedv1.ListResponse{Objects: objs, Revision: rev}, nil
}

func (e *objectEndpoint) Delete(ctx context.Context, req *meshfedv1.DeleteRequest) (*meshfedv1.DeleteResponse, error) {
	k, err := objects.LookupKind(req.GetKind())
	if err != nil {
		return nil, refuse(ErrInvalidArgument, "kind: "+err.Error())
	}
	if k.System {
		return nil, refusef(ErrInvalidArgument, "kind: %s is written by the control plane only", k.Name)
	}
	if req.GetName() == "" {
		return nil, refuse(ErrInvalidArgument, "name: required")
	}
	if err := scopeArgs(k, req.GetTenant(), req.GetNamespace(), true); err != nil {
		return nil, err
	}
	const method = meshfedv1.ObjectService_Delete_FullMethodName
	target := &meshfedv1.AuditTarget{Kind: k.Name, Tenant: req.GetTenant(), Namespace: req.GetNamespace(), Name: req.GetName()}
	action, _ := policies.WriteAction(k.Name)
	if err := e.srv.authorize(ctx, method, action, target); err != nil {
		return nil, err
	}
	resp := &meshfedv1.DeleteResponse{}
	if done, err := e.srv.forward(ctx, method, req, resp); done {
		return resp, err
	}
	entry := &raftlogv1.DeleteObject{Kind: k.Name, Tenant: req.GetTenant(), Namespace: req.GetNamespace(),
		Name: req.GetName(), ResourceVersion: req.GetResourceVersion(), Now: timestamppb.Now()}
	if !req.GetDryRun() {
		entry.Audit = e.srv.auditEntry(ctx, method, action, target)
	}
	if req.GetDryRun() {
		st := e.srv.fsm.State()
		old, err := st.Delete(st.Revision(), entry, true)
		if err != nil {
			return nil, toStatus(err)
		}
		return &meshfedv1.DeleteResponse{Revision: st.Revision(), Object: old}, nil
	}
	t := DeleteObjectType
	if e.srv.membersApply(DeleteCascadeType) {
		t = DeleteCascadeType // a mesh's assignments go with it; else the scheduler removes them
	}
	r, err := e.srv.raftApply(ctx, t, entry)
	e.srv.logWrite(entry.Audit, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &meshfedv1.DeleteResponse{Revision: objects.Meta(r.deleted).GetResourceVersion(), Object: r.deleted}, nil
}

// Watch streams events from the local store: every node serves watches, and
// revisions are Raft indexes, so a client may resume on any node.
func (e *objectEndpoint) Watch(req *meshfedv1.WatchRequest, stream meshfedv1.ObjectService_WatchServer) error {
	f, kinds, err := narrowFilter(req.GetKind(), req.GetKinds(), req.GetTenant(), req.GetNamespace(), "", req.GetAgent(), true)
	if err != nil {
		return err
	}
	ctx := stream.Context()
	for _, k := range kinds {
		if err := e.srv.authorizeRange(ctx, meshfedv1.ObjectService_Watch_FullMethodName, k, req.GetTenant(), req.GetNamespace()); err != nil {
			return err
		}
	}
	if e.srv.cfg.Auth {
		f.Match = func(o *meshfedv1.Object) bool { return e.srv.allowed(ctx, o) }
	}
	st := e.srv.fsm.State()
	rev := req.GetStartRevision()
	if rev == 0 {
		rev = st.Revision()
	}
	progress := time.NewTicker(watchProgressInterval)
	defer progress.Stop()
	sentRev := uint64(0)
	for {
		if cur := e.srv.fsm.State(); cur != st {
			// A snapshot restore replaced the state: history no longer
			// connects, so the client must list again.
			return stream.Send(&meshfedv1.WatchResponse{ResyncRequired: true, Revision: cur.Revision(), CompactRevision: cur.CompactRevision()})
		}
		evs, cur, changed, err := st.EventsAfter(rev, f)
		if errors.Is(err, state.ErrCompacted) {
			return stream.Send(&meshfedv1.WatchResponse{ResyncRequired: true, Revision: cur, CompactRevision: st.CompactRevision()})
		}
		if err != nil {
			return toStatus(err)
		}
		if len(evs) > 0 {
			const maxBatch = 256
			for len(evs) > 0 {
				n := min(len(evs), maxBatch)
				// Never split one revision's events (a batch entry or a
				// multi-object apply): the response's revision says the
				// client has every event up to it.
				for n < len(evs) && evs[n].GetRevision() == evs[n-1].GetRevision() {
					n++
				}
				batch := evs[:n]
				evs = evs[n:]
				last := batch[len(batch)-1].GetRevision()
				if err := e.srv.watchEnc.send(stream, &meshfedv1.WatchResponse{Events: batch, Revision: last}); err != nil {
					return err
				}
				sentRev = last
			}
		}
		if cur > rev {
			rev = cur
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-progress.C:
			if rev > sentRev {
				if err := stream.Send(&meshfedv1.WatchResponse{Revision: rev}); err != nil {
					return err
				}
				sentRev = rev
			}
		}
	}
}

// scopeArgs checks that tenant and namespace are given exactly when the kind needs them.
func scopeArgs(k *objects.Kind, tenant, namespace string, exact bool) error {
	needT := k.Scope != objects.ScopeGlobal
	needNS := k.Scope == objects.ScopeNamespace
	switch {
	case exact && needT && tenant == "":
		return refusef(ErrInvalidArgument, "tenant: required for kind %s", k.Name)
	case exact && needNS && namespace == "":
		return refusef(ErrInvalidArgument, "namespace: required for kind %s", k.Name)
	case !needT && tenant != "":
		return refusef(ErrInvalidArgument, "tenant: kind %s is not tenant-scoped", k.Name)
	case !needNS && namespace != "":
		return refusef(ErrInvalidArgument, "namespace: kind %s is not namespace-scoped", k.Name)
	case namespace != "" && tenant == "":
		return refuse(ErrInvalidArgument, "tenant: required when namespace is set")
	}
	return nil
}

// narrowFilter builds the filter of a List or Watch naming kind and more
// kinds, and returns the kind names to authorize ("" alone: every kind).
func narrowFilter(kind string, more []string, tenant, namespace, selector, agent string, allowAllKinds bool) (state.Filter, []string, error) {
	all := slices.DeleteFunc(append([]string{kind}, more...), func(k string) bool { return k == "" })
	if len(all) <= 1 {
		f, err := filterOf(strings.Join(all, ""), tenant, namespace, selector, allowAllKinds)
		f.Agent = agent
		return f, []string{f.Kind}, err
	}
	var f state.Filter
	var names []string
	for _, k := range all {
		one, err := filterOf(k, tenant, namespace, selector, false)
		if err != nil {
			return f, nil, err
		}
		if !slices.Contains(names, one.Kind) {
			names = append(names, one.Kind)
		}
		f = one
	}
	f.Kind, f.Kinds, f.Agent = "", names, agent
	return f, names, nil
}

func filterOf(kind, tenant, namespace, selector string, allowAllKinds bool) (state.Filter, error) {
	f := state.Filter{Tenant: tenant, Namespace: namespace}
	if kind == "" && !allowAllKinds {
		return f, refuse(ErrInvalidArgument, "kind: required")
	}
	if kind != "" {
		k, err := objects.LookupKind(kind)
		if err != nil {
			return f, refuse(ErrInvalidArgument, "kind: "+err.Error())
		}
		if err := scopeArgs(k, tenant, namespace, false); err != nil {
			return f, err
		}
		f.Kind = k.Name
	}
	if selector != "" {
		sel, err := objects.ParseSelector(selector)
		if err != nil {
			return f, refuse(ErrInvalidArgument, "label_selector: "+err.Error())
		}
		f.Selector = sel.Matches
	}
	return f, nil
}

// fillTypeMeta sets apiVersion and kind when a gRPC caller left them empty:
// the Object's oneof already says which kind it is. Values the caller did set
// are kept, so validation still reports a wrong one.
func fillTypeMeta(o *meshfedv1.Object) {
	m := objects.Unwrap(o).ProtoReflect()
	fields := m.Descriptor().Fields()
	api, kind := fields.ByName("api_version"), fields.ByName("kind")
	if m.Get(api).String() == "" {
		m.Set(api, protoreflect.ValueOfString(objects.APIVersion))
	}
	if m.Get(kind).String() == "" {
		m.Set(kind, protoreflect.ValueOfString(objects.KindOf(o).Name))
	}
}
