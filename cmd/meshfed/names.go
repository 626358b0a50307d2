package main

import (
	"fmt"
	"strings"

	"github.com/meshfed/meshfed/objects"
)

// scopeFlags are --tenant and --namespace, shared by commands that name objects.
type scopeFlags struct {
	tenant, namespace string
}

// objectName resolves NAME for a kind: "name", "tenant/name" or
// "tenant/namespace/name" as the kind's scope requires. A bare name of a
// namespace-scoped kind uses --tenant/--namespace, or public/default.
func (s scopeFlags) objectName(k *objects.Kind, name string) (tenant, namespace, n string, err error) {
	parts := strings.Split(name, "/")
	switch k.Scope {
	case objects.ScopeGlobal:
		if len(parts) != 1 {
			return "", "", "", usageError{fmt.Errorf("%s names are not scoped: %q", k.Name, name)}
		}
		return "", "", name, nil
	case objects.ScopeTenant:
		switch len(parts) {
		case 1:
			return or(s.tenant, "public"), "", name, nil
		case 2:
			return parts[0], "", parts[1], nil
		}
		return "", "", "", usageError{fmt.Errorf("%s name %q: use NAME or TENANT/NAME", k.Name, name)}
	default:
		switch len(parts) {
		case 1:
			return or(s.tenant, "public"), or(s.namespace, "default"), name, nil
		case 3:
			return parts[0], parts[1], parts[2], nil
		}
		return "", "", "", usageError{fmt.Errorf("%s name %q: use NAME or TENANT/NAMESPACE/NAME", k.Name, name)}
	}
}

// listScope returns the tenant/namespace filter for a list of kind k.
func (s scopeFlags) listScope(k *objects.Kind) (tenant, namespace string) {
	switch k.Scope {
	case objects.ScopeGlobal:
		return "", ""
	case objects.ScopeTenant:
		return s.tenant, ""
	}
	if s.tenant == "" {
		return "", ""
	}
	return s.tenant, s.namespace
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// lookupKind resolves a KIND argument, as a usage error when unknown.
func lookupKind(name string) (*objects.Kind, error) {
	k, err := objects.LookupKind(name)
	if err != nil {
		return nil, usageError{err}
	}
	return k, nil
}
