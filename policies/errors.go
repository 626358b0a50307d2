package policies

import (
	"errors"
	"strings"

	"github.com/meshfed/meshfed/internal/errlist"
)

// Sentinel errors. Every *Violation matches exactly one of ErrPermissionDenied
// and ErrFailedPrecondition (errors.Is), every *Denied matches
// ErrPermissionDenied, and Violations matches each code one of its
// violations carries. The gRPC boundary maps them to the codes of the same
// names, testing ErrPermissionDenied first.
var (
	// ErrPermissionDenied: a rule forbids the request whatever the state of
	// the namespace: a grant is missing, a cluster, runtime or flow is not
	// allowed, residency is broken, or the principal's role does not allow
	// the action.
	ErrPermissionDenied = errors.New("permission denied by policy")
	// ErrFailedPrecondition: the request is allowed in principle but not in
	// the current state: a quota is used up.
	ErrFailedPrecondition = errors.New("policy precondition failed")
	// ErrInvalidPrincipal: a Principal's role is unknown or its scope does
	// not fit its role (InvalidArgument at the boundary).
	ErrInvalidPrincipal = errors.New("invalid principal")
)

// Code classifies a violation the way the API reports it.
type Code int

const (
	// PermissionDenied: see ErrPermissionDenied.
	PermissionDenied Code = iota + 1
	// FailedPrecondition: see ErrFailedPrecondition.
	FailedPrecondition
)

// String returns the gRPC name of the code.
func (c Code) String() string {
	switch c {
	case PermissionDenied:
		return "PermissionDenied"
	case FailedPrecondition:
		return "FailedPrecondition"
	}
	return "Unknown"
}

// Rule names one policy rule. The names are stable: tools and tests match
// on them, and the control plane records them in Degraded conditions.
type Rule string

// The rules AdmitMesh, Recheck and AdmitPlacement evaluate.
const (
	RuleAllowedClusters Rule = "tenant.allowedClusters"
	RuleAllowedRuntimes Rule = "namespace.allowedRuntimes"
	RuleQuotaMeshes     Rule = "namespace.quotas.meshes"
	RuleQuotaFunctions  Rule = "namespace.quotas.functions"
	RuleQuotaInstances  Rule = "namespace.quotas.instances"
	RuleQuotaReplicas   Rule = "namespace.quotas.replicasPerFunction"
	RuleFlows           Rule = "namespace.flows"
	RuleResidency       Rule = "namespace.residency"
	RuleGrantProduce    Rule = "grant.produce"
	RuleGrantConsume    Rule = "grant.consume"
)

// Bounds on what one reason repeats of the input.
const (
	maxQuoted = 80 // bytes of one user-supplied string
	maxReason = 512
)

// Rules lists every rule, in the order AdmitMesh evaluates them within one
// function (the mesh-wide quotas come first; see the package comment).
func Rules() []Rule {
	return []Rule{RuleQuotaMeshes, RuleQuotaFunctions, RuleQuotaInstances, RuleAllowedRuntimes, RuleQuotaReplicas,
		RuleAllowedClusters, RuleResidency, RuleFlows, RuleGrantConsume, RuleGrantProduce}
}

// Code returns the code a violation of the rule carries: FailedPrecondition
// for quotas, PermissionDenied for every other rule.
func (r Rule) Code() Code {
	if strings.HasPrefix(string(r), "namespace.quotas.") {
		return FailedPrecondition
	}
	return PermissionDenied
}

// DegradedReason is the Condition reason the control plane should set on a
// mesh whose Recheck fails; the condition message is the error text.
const DegradedReason = "PolicyViolation"

// Violation is one broken rule in one field of a FunctionMesh.
type Violation struct {
	// Rule is the broken rule, one of Rules().
	Rule Rule
	// Path is the field of the mesh that breaks it, in objects.FieldError
	// style ("spec.functions[0].output.cluster"). For AdmitPlacement it is
	// the field whose effective value (the cluster passed in) breaks it.
	Path string
	// Reason says what is wrong, starting with the offending value, and
	// names the tenant, namespace or grant the rule comes from.
	Reason string
	// Code is Rule.Code().
	Code Code
}

// Error formats the violation as "<path> <reason> (<rule>)".
func (v *Violation) Error() string {
	var b strings.Builder
	if v.Path != "" {
		b.WriteString(v.Path)
		b.WriteByte(' ')
	}
	b.WriteString(v.Reason)
	b.WriteString(" (")
	b.WriteString(string(v.Rule))
	b.WriteByte(')')
	return b.String()
}

// Is matches the sentinel of the violation's code.
func (v *Violation) Is(target error) bool {
	return target == ErrPermissionDenied && v.Code == PermissionDenied ||
		target == ErrFailedPrecondition && v.Code == FailedPrecondition
}

// Violations is every rule one mesh breaks, in evaluation order. A non-nil
// Violations returned as an error is never empty.
type Violations []*Violation

// Error joins the violations with newlines.
func (l Violations) Error() string { return errlist.Error(l) }

// Unwrap returns the single violations, so errors.As finds a *Violation and
// errors.Is finds the sentinel of each one's code.
func (l Violations) Unwrap() []error { return errlist.Unwrap(l) }

// Code is the code to answer with: PermissionDenied when any violation is
// one, else FailedPrecondition. Zero for an empty list.
func (l Violations) Code() Code {
	var c Code
	for _, v := range l {
		if v.Code == PermissionDenied {
			return PermissionDenied
		}
		c = v.Code
	}
	return c
}

// AsViolations returns the violations in err (a Violations or a single
// *Violation), or nil when it carries none.
func AsViolations(err error) Violations { return errlist.As[Violations](err) }
