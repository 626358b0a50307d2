package controlplane

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
)

// MessageType is the first byte of every Raft log entry meshfed writes; the
// rest of the entry is the protobuf body of that type. The list only grows
// at its end. Types with IgnoreUnknownTypeFlag set may be skipped by a
// server too old to know them; any other unknown type stops the server
// rather than let its state diverge.
type MessageType uint8

const (
	// ApplyObjectsType carries raftlogv1.ApplyObjects.
	ApplyObjectsType MessageType = 1
	// DeleteObjectType carries raftlogv1.DeleteObject.
	DeleteObjectType MessageType = 2
	// UpsertMemberType carries raftlogv1.Member.
	UpsertMemberType MessageType = 3
	// RemoveMemberType carries raftlogv1.RemoveMember.
	RemoveMemberType MessageType = 4
	// CommitStateType carries raftlogv1.CommitState.
	CommitStateType MessageType = 5
	// PutPackageType carries raftlogv1.PutPackage.
	PutPackageType MessageType = 6
	// InitAuthType carries raftlogv1.InitAuth.
	InitAuthType MessageType = 7
	// PutTokenType carries raftlogv1.PutToken.
	PutTokenType MessageType = 8
	// RevokeTokenType carries raftlogv1.RevokeToken.
	RevokeTokenType MessageType = 9
	// AppendAuditType carries raftlogv1.AppendAudit.
	AppendAuditType MessageType = 10
	// TrimAuditType carries raftlogv1.TrimAudit.
	TrimAuditType MessageType = 11
	// BatchType carries several entries committed together (group commit):
	// each sub-entry is a uvarint length, then a whole entry of another
	// type (type byte and body). See encodeBatch.
	BatchType MessageType = 12
	// UpdateStatusType carries raftlogv1.UpdateStatus.
	UpdateStatusType MessageType = 13
	// ApplyPlanType carries raftlogv1.ApplyPlan.
	ApplyPlanType MessageType = 14
	// RegisterAgentType carries raftlogv1.RegisterAgent.
	RegisterAgentType MessageType = 15
	// DeleteCascadeType carries raftlogv1.DeleteObject: the delete of
	// DeleteObjectType, except that deleting a FunctionMesh also deletes
	// its Assignments in the same entry (state.Store.DeleteCascade).
	DeleteCascadeType MessageType = 16
	// 17-19 are reserved for more of the control plane's own writes,
	// 20-23 for function state.

	// IgnoreUnknownTypeFlag marks entries an older server may skip.
	IgnoreUnknownTypeFlag MessageType = 128
)

func (t MessageType) String() string {
	switch t &^ IgnoreUnknownTypeFlag {
	case ApplyObjectsType:
		return "ApplyObjects"
	case DeleteObjectType:
		return "DeleteObject"
	case UpsertMemberType:
		return "UpsertMember"
	case RemoveMemberType:
		return "RemoveMember"
	case CommitStateType:
		return "CommitState"
	case PutPackageType:
		return "PutPackage"
	case InitAuthType:
		return "InitAuth"
	case PutTokenType:
		return "PutToken"
	case RevokeTokenType:
		return "RevokeToken"
	case AppendAuditType:
		return "AppendAudit"
	case TrimAuditType:
		return "TrimAudit"
	case UpdateStatusType:
		return "UpdateStatus"
	case ApplyPlanType:
		return "ApplyPlan"
	case RegisterAgentType:
		return "RegisterAgent"
	case BatchType:
		return "Batch"
	case DeleteCascadeType:
		return "DeleteCascade"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// newLogTypes are the types this server applies beyond the original set
// (1-11), which the first servers knew. A server advertises them in its
// member record; the leader writes one only when every member of the Raft
// configuration advertises it, and otherwise writes the original form of
// the same change (see legacyEntry), so servers are upgraded one at a time.
var newLogTypes = []MessageType{BatchType, UpdateStatusType, ApplyPlanType, RegisterAgentType, DeleteCascadeType}

// advertisedLogTypes is what a member record lists: newLogTypes, or none
// for a server that behaves as one older than them.
func advertisedLogTypes(legacy bool) []uint32 {
	if legacy {
		return nil
	}
	out := make([]uint32, len(newLogTypes))
	for i, t := range newLogTypes {
		out[i] = uint32(t)
	}
	return out
}

// knownLogType reports whether a server applies entries of type t.
func knownLogType(t MessageType, legacy bool) bool {
	if t >= ApplyObjectsType && t <= TrimAuditType {
		return true
	}
	return !legacy && slices.Contains(newLogTypes, t)
}

// encodeEntry builds a log entry: the type byte, then the body.
func encodeEntry(t MessageType, body proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend([]byte{byte(t)}, body)
	if err != nil {
		return nil, fmt.Errorf("encode %s entry: %w", t, err)
	}
	return b, nil
}
