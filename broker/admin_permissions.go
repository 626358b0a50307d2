package broker

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// grantableActions are the actions a namespace permission may name, as
// Pulsar's AuthAction does; only produce, consume and functions are
// checked by this broker.
var grantableActions = []string{actionProduce, actionConsume, actionFunctions, "sources", "sinks", "packages"}

// access is what an admin route requires of the caller's role.
type access int

const (
	// accessOpen needs no credentials (/metrics).
	accessOpen access = iota
	// accessAuthenticated needs any authenticated role.
	accessAuthenticated
	// accessSuper needs a superuser role.
	accessSuper
	// accessTenantAdmin needs a superuser or an admin role of the path's
	// tenant.
	accessTenantAdmin
	// accessLookup needs tenant admin or a produce, consume or functions
	// permission on the path's namespace.
	accessLookup
)

// guard authenticates and authorizes a request before h serves it:
// HTTP 401 {"reason"} for refused credentials, 403 for a role without the
// access.
func (b *Broker) guard(a access, h http.HandlerFunc) http.HandlerFunc {
	if a == accessOpen {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		role, err := b.authenticateHTTP(r)
		if err != nil {
			b.log.Debug("admin request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			httpError(w, err)
			return
		}
		if err := b.authorizeHTTP(a, role, r); err != nil {
			httpError(w, err)
			return
		}
		h(w, r)
	}
}

func (b *Broker) authorizeHTTP(a access, role string, r *http.Request) error {
	if b.isSuper(role) {
		return nil
	}
	tenant, ns := r.PathValue("tenant"), r.PathValue("namespace")
	b.mu.Lock()
	defer b.mu.Unlock()
	ok := false
	switch a {
	case accessAuthenticated:
		ok = true
	case accessTenantAdmin:
		ok = b.isTenantAdminLocked(role, tenant)
	case accessLookup:
		ok = b.allowedLocked(role, tenant+"/"+ns, actionProduce, actionConsume, actionFunctions)
	}
	if !ok {
		what := map[access]string{accessSuper: "a superuser role", accessTenantAdmin: "an admin role of tenant " + tenant,
			accessLookup: "a permission on namespace " + tenant + "/" + ns}[a]
		return fmt.Errorf("%w: role %q: %s %s needs %s", ErrAuthorization, role, r.Method, r.URL.Path, what)
	}
	return nil
}

// getPermissions answers GET /admin/v2/namespaces/{t}/{ns}/permissions:
// the actions granted, by role.
func (b *Broker) getPermissions(w http.ResponseWriter, r *http.Request) {
	ns := nsOf(r)
	b.mu.Lock()
	p, ok := b.meta.Namespaces[ns]
	out := map[string][]string{}
	if ok {
		for role, acts := range p.Permissions {
			out[role] = slices.Clone(acts)
		}
	}
	b.mu.Unlock()
	if !ok {
		httpError(w, errorf(ErrNamespaceNotFound, "namespace %s", ns))
		return
	}
	writeJSON(w, out)
}

// grantPermission answers POST .../permissions/{role} with a JSON array of
// actions: the role's actions become exactly those. Connected producers
// and consumers of the role that lost their action are closed.
func (b *Broker) grantPermission(w http.ResponseWriter, r *http.Request) {
	ns, role := nsOf(r), r.PathValue("role")
	if strings.TrimSpace(role) == "" {
		httpError(w, errorf(ErrBadRequest, "role: empty"))
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	var acts []string
	if err := json.Unmarshal(body, &acts); err != nil {
		httpError(w, errorf(ErrBadRequest, "permissions body: want a JSON array of actions (%s): %v", strings.Join(grantableActions, ", "), err))
		return
	}
	acts = dedupNames(acts)
	for _, a := range acts {
		if !slices.Contains(grantableActions, a) {
			httpError(w, errorf(ErrBadRequest, "permissions body: unknown action %q (want %s)", a, strings.Join(grantableActions, ", ")))
			return
		}
	}
	replyNoContent(w, b.setPermission(ns, role, acts))
}

// revokePermission answers DELETE .../permissions/{role}.
func (b *Broker) revokePermission(w http.ResponseWriter, r *http.Request) {
	replyNoContent(w, b.setPermission(nsOf(r), r.PathValue("role"), nil))
}

// setPermission stores role's actions on ns (none = revoked) and closes
// what the change no longer allows.
func (b *Broker) setPermission(ns, role string, acts []string) error {
	b.mu.Lock()
	p, ok := b.meta.Namespaces[ns]
	if !ok {
		b.mu.Unlock()
		return errorf(ErrNamespaceNotFound, "namespace %s", ns)
	}
	old := maps.Clone(p.Permissions)
	if p.Permissions == nil {
		p.Permissions = map[string][]string{}
	}
	if len(acts) == 0 {
		delete(p.Permissions, role)
	} else {
		p.Permissions[role] = acts
	}
	if err := b.saveMetadataLocked(); err != nil {
		p.Permissions = old
		b.mu.Unlock()
		return err
	}
	b.mu.Unlock()
	b.log.Info("namespace permission set", "namespace", ns, "role", role, "actions", acts)
	b.enforcePermissions(ns)
	return nil
}

// GrantPermission sets role's actions on namespace ns ("tenant/ns"), as
// POST /admin/v2/namespaces/{tenant}/{ns}/permissions/{role} does; for
// embedding programs and tools.
func (b *Broker) GrantPermission(ns, role string, actions ...string) error {
	for _, a := range actions {
		if !slices.Contains(grantableActions, a) {
			return errorf(ErrBadRequest, "unknown action %q (want %s)", a, strings.Join(grantableActions, ", "))
		}
	}
	return b.setPermission(ns, role, dedupNames(actions))
}
