package controlplane

import (
	"fmt"

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
	case BatchType:
		return "Batch"
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// encodeEntry builds a log entry: the type byte, then the body.
func encodeEntry(t MessageType, body proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend([]byte{byte(t)}, body)
	if err != nil {
		return nil, fmt.Errorf("encode %s entry: %w", t, err)
	}
	return b, nil
}
