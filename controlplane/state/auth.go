package state

import (
	"crypto/ed25519"
	"fmt"

	memdb "github.com/hashicorp/go-memdb"
	raftlogv1 "github.com/meshfed/meshfed/gen/meshfed/raftlog/v1"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

const (
	tableKeys   = "keys"
	tableTokens = "tokens"
)

// DefaultAuditRetention is how many audit records the leader keeps.
const DefaultAuditRetention = 100000

type keyEntry struct {
	ID string
	K  *raftlogv1.SigningKey
}

type tokenEntry struct {
	ID string
	T  *meshfedv1.Token
}

func authTables(t map[string]*memdb.TableSchema) {
	t[tableKeys] = &memdb.TableSchema{Name: tableKeys, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
	}}
	t[tableTokens] = &memdb.TableSchema{Name: tableTokens, Indexes: map[string]*memdb.IndexSchema{
		"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
	}}
}

// InitAuth stores the first signing key and the bootstrap token. Only the
// first InitAuth entry takes effect: later ones (a second leader racing the
// first) return initialized=false and change nothing but the revision.
func (s *Store) InitAuth(index uint64, req *raftlogv1.InitAuth) (initialized bool, err error) {
	if req.GetKey().GetId() == "" || len(req.GetKey().GetPrivateKey()) != ed25519.PrivateKeySize || req.GetBootstrap().GetId() == "" {
		s.Touch(index)
		return false, invalid{fmt.Errorf("InitAuth needs a key id, a %d-byte Ed25519 key and a bootstrap token", ed25519.PrivateKeySize)}
	}
	txn := s.db.Txn(true)
	defer txn.Abort()
	if raw, _ := txn.First(tableKeys, "id"); raw != nil {
		s.Touch(index)
		return false, nil
	}
	if err := txn.Insert(tableKeys, &keyEntry{ID: req.GetKey().GetId(), K: req.GetKey()}); err != nil {
		s.Touch(index)
		return false, fmt.Errorf("store signing key: %w", err)
	}
	if err := txn.Insert(tableTokens, &tokenEntry{ID: req.GetBootstrap().GetId(), T: req.GetBootstrap()}); err != nil {
		s.Touch(index)
		return false, fmt.Errorf("store bootstrap token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	txn.Commit()
	s.commitLocked(index, nil)
	return true, nil
}

// AuthInitialized reports whether a signing key exists.
func (s *Store) AuthInitialized() bool {
	raw, _ := s.db.Txn(false).First(tableKeys, "id")
	return raw != nil
}

// SigningKey returns the key new tokens are signed with: the newest one.
func (s *Store) SigningKey() (*raftlogv1.SigningKey, bool) {
	it, err := s.db.Txn(false).Get(tableKeys, "id")
	if err != nil {
		return nil, false
	}
	var newest *raftlogv1.SigningKey
	for raw := it.Next(); raw != nil; raw = it.Next() {
		k := raw.(*keyEntry).K
		if newest == nil || k.GetCreated().AsTime().After(newest.GetCreated().AsTime()) {
			newest = k
		}
	}
	return newest, newest != nil
}

// PublicKey returns the public half of a signing key.
func (s *Store) PublicKey(id string) (ed25519.PublicKey, bool) {
	raw, _ := s.db.Txn(false).First(tableKeys, "id", id)
	if raw == nil {
		return nil, false
	}
	k := raw.(*keyEntry).K.GetPrivateKey()
	if len(k) != ed25519.PrivateKeySize {
		return nil, false
	}
	return ed25519.PrivateKey(k).Public().(ed25519.PublicKey), true
}

// PutToken records an issued token and its audit record.
func (s *Store) PutToken(index uint64, req *raftlogv1.PutToken) error {
	t := req.GetToken()
	if t.GetId() == "" {
		s.Touch(index)
		return invalid{fmt.Errorf("token: id required")}
	}
	txn := s.db.Txn(true)
	defer txn.Abort()
	if raw, _ := txn.First(tableTokens, "id", t.GetId()); raw != nil {
		s.Touch(index)
		return invalid{fmt.Errorf("token %s already exists", t.GetId())}
	}
	if err := txn.Insert(tableTokens, &tokenEntry{ID: t.GetId(), T: t}); err != nil {
		s.Touch(index)
		return fmt.Errorf("store token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	txn.Commit()
	s.commitLocked(index, nil)
	return nil
}

// RevokeToken marks a token revoked and returns its record. Revoking a
// revoked token changes nothing and returns the record.
func (s *Store) RevokeToken(index uint64, req *raftlogv1.RevokeToken) (*meshfedv1.Token, error) {
	txn := s.db.Txn(true)
	defer txn.Abort()
	raw, _ := txn.First(tableTokens, "id", req.GetId())
	if raw == nil {
		s.Touch(index)
		return nil, fmt.Errorf("token %q: %w", req.GetId(), ErrNotFound)
	}
	t := raw.(*tokenEntry).T
	if t.GetRevoked() {
		s.Touch(index)
		return t, nil
	}
	t = proto.CloneOf(t)
	t.Revoked, t.RevokedAt, t.RevokedBy = true, req.GetNow(), req.GetBy()
	if err := txn.Insert(tableTokens, &tokenEntry{ID: t.GetId(), T: t}); err != nil {
		s.Touch(index)
		return nil, fmt.Errorf("revoke token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	txn.Commit()
	s.commitLocked(index, nil)
	return t, nil
}

// Token returns a token record, or nil.
func (s *Store) Token(id string) *meshfedv1.Token {
	raw, _ := s.db.Txn(false).First(tableTokens, "id", id)
	if raw == nil {
		return nil
	}
	return raw.(*tokenEntry).T
}

// Tokens returns every token record, by id.
func (s *Store) Tokens() []*meshfedv1.Token {
	it, err := s.db.Txn(false).Get(tableTokens, "id")
	if err != nil {
		return nil
	}
	var out []*meshfedv1.Token
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*tokenEntry).T)
	}
	return out
}

// AppendAudit stores audit records at index, numbering them from seq 0
// (from the batch's next free number inside a batch). It keeps and numbers
// recs themselves (the FSM decoded them): the caller gives them up.
func (s *Store) AppendAudit(index uint64, recs ...*meshfedv1.AuditRecord) {
	s.mu.Lock()
	base := s.auditSeqLocked(index, len(recs))
	s.mu.Unlock()
	txn := s.beginWrite(index, false) // in a batch, the batch's transaction
	defer txn.abort()
	for i, r := range recs {
		r.Revision, r.Seq = index, base+uint32(i)
		txn.audit.ReplaceOrInsert(r)
	}
	s.commitWrite(txn, index, nil)
}

// AuditTrimPoint returns the revision before which records should go to
// keep about keep of them, or zero while the log holds at most a tenth
// more than keep (trimming is amortised).
func (s *Store) AuditTrimPoint(keep int) uint64 {
	audit := s.pub.Load().audit
	count := audit.Len()
	if keep <= 0 || count-keep <= keep/10 {
		return 0
	}
	skip := count - keep
	var at uint64
	audit.Ascend(func(r *meshfedv1.AuditRecord) bool {
		if skip == 0 {
			at = r.GetRevision()
			return false
		}
		skip--
		return true
	})
	return at
}

// TrimAudit drops the records with a revision before before and returns
// how many it dropped.
func (s *Store) TrimAudit(index, before uint64) int {
	txn := s.beginWrite(index, false)
	defer txn.abort()
	var drop []*meshfedv1.AuditRecord
	txn.audit.AscendLessThan(&meshfedv1.AuditRecord{Revision: before}, func(r *meshfedv1.AuditRecord) bool {
		drop = append(drop, r)
		return true
	})
	for _, r := range drop {
		txn.audit.Delete(r)
	}
	s.commitWrite(txn, index, nil)
	return len(drop)
}

// Audit returns up to limit of the newest records that match, oldest first.
func (s *Store) Audit(match func(*meshfedv1.AuditRecord) bool, limit int) []*meshfedv1.AuditRecord {
	if limit <= 0 {
		return nil
	}
	var out []*meshfedv1.AuditRecord
	s.pub.Load().audit.Descend(func(r *meshfedv1.AuditRecord) bool {
		if match(r) {
			out = append(out, r)
		}
		return len(out) < limit
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
