// Package store is the only package that touches pkid's database. Store is
// the interface every backend implements (bbolt now, PostgreSQL later); the
// storetest package holds the conformance suite both must pass.
//
// Contract for every implementation:
//   - InsertCertificate returns only after the record is durably committed,
//     and fails with ErrDuplicate if the serial exists: serials are never
//     reused.
//   - Records returned are copies: callers may keep and modify them.
//   - Times are stored as given; the store never reads a clock.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors, checked with errors.Is.
var (
	ErrNotFound  = errors.New("not found")
	ErrDuplicate = errors.New("already exists")
	// ErrStale is returned by CRL updates whose number does not increase.
	ErrStale = errors.New("stale update")
	// ErrKeyBlocked refuses a record whose key a keyCompromise revocation
	// blocked, checked in the insert's own transaction.
	ErrKeyBlocked = errors.New("key blocked by a keyCompromise revocation")
	// ErrListedRevoked refuses a valid record of a serial its issuer's CRL
	// lists revoked without a record (AddUnrecordedRevocation): its
	// record must be revoked, and then takes that entry's place.
	ErrListedRevoked = errors.New("listed revoked on its issuer's CRL")
	// ErrReplacedRevoked refuses a renewal whose predecessor was revoked
	// before the renewal committed.
	ErrReplacedRevoked = errors.New("the certificate being replaced is revoked")
)

// SchemaVersion is written at creation and raised when an older store is
// opened; Open refuses a newer schema. 2: certificate records may be in
// certFormatDER, which version 1 cannot read (version 2 reads both, so
// raising it needs no migration). 3: orders and authorizations are indexed
// by expiry for PruneACME (opening an older store fills the index). 4:
// each record's notAfter and revocation are indexed for status listings
// (filled likewise). 5: tokens are indexed by expiry for PruneTokens
// (filled likewise). 6: the state index carries a tag of each
// record's key, for a keyCompromise revocation's reach (filled likewise).
// 7: orders that have not become valid are indexed by account and
// creation time for UnfinishedOrders (filled likewise).
const SchemaVersion = 7

// Certificate statuses as stored; "expired" is derived from NotAfter when
// read, never stored.
const (
	StatusValid   = "valid"
	StatusRevoked = "revoked"
)

// How a certificate was issued (CertRecord.Via). The store itself acts on
// ViaRenew: a renewal's only authority is the certificate it replaces.
const (
	ViaAPI    = "api"    // REST sign or issue, with a token
	ViaACME   = "acme"   // an ACME order
	ViaRenew  = "renew"  // mTLS renewal of a certificate pkid issued
	ViaServer = "server" // pkid's own certificates (TLS, OCSP responder)
	// ViaAdopted: a certificate the CA signed and its store had no record
	// of (issued after a backup the store was restored from), recorded by
	// an operator (ca.Authority.Adopt); its Requester is "adopted" too.
	ViaAdopted = "adopted"
)

// CertRecord is everything pkid keeps about one issued certificate.
type CertRecord struct {
	Serial    string    `json:"serial"` // lowercase hex, no leading zeros
	Issuer    string    `json:"issuer"` // issuing CA's subject key ID, hex
	Role      string    `json:"role"`
	Names     []string  `json:"names"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DER       []byte    `json:"der,omitempty"`
	// KeyHash is the hex SHA-256 of the subject public key info, used to
	// block a compromised key from being certified again.
	KeyHash   string    `json:"key_hash"`
	Status    string    `json:"status"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
	// Requester names who asked: "token:<name>", "enroll:<name>", "oidc:<subject>", "acme:<account>", "mtls:<serial>".
	Requester string `json:"requester"`
	// AuthorizedAt is when the last real authorization (token, OIDC, ACME
	// validation) happened; renewals copy it, which bounds renewal chains.
	AuthorizedAt time.Time `json:"authorized_at"`
	// AuthorizedBy is the requester of that authorization when it is not
	// Requester itself: a renewal copies it from the certificate it renews,
	// so a leaked token's certificates can still be found, and revoked,
	// after their holders renewed them.
	AuthorizedBy string `json:"authorized_by,omitempty"`
	// Via is how it was issued: ViaAPI, ViaACME, ViaRenew, ViaServer, or
	// ViaAdopted for one recorded after it was issued.
	Via string `json:"via"`
	// Replaces is the serial of the certificate this one replaces: the one
	// a renewal renewed, or the one an ACME order named in "replaces"
	// (RFC 9773 §5).
	Replaces string `json:"replaces,omitempty"`
	// ReplacedBy is the serial of the first certificate committed to
	// replace this one. An ACME order may not name a certificate that
	// already has one (alreadyReplaced, RFC 9773 §5).
	ReplacedBy string    `json:"replaced_by,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// Authorizer is who made the real authorization a certificate rests on:
// AuthorizedBy for a renewal, its own Requester otherwise.
func (r *CertRecord) Authorizer() string {
	if r.AuthorizedBy != "" {
		return r.AuthorizedBy
	}
	return r.Requester
}

// ListFilter selects certificates; zero fields do not filter.
type ListFilter struct {
	Role   string
	Status string // valid, revoked, expired
	// Name lists only the records that carry this exact name among their
	// Names, in the form issuance writes them (DNS names in lower case,
	// IP addresses in Go's canonical text): the question an operator asks
	// when a host is retired or its key leaks. Stores may answer it by
	// scanning, so a page may read many records to fill.
	Name string
	// Requester lists only the records of one requester, exactly as
	// recorded ("token:ci-main", "acme:<account>", "enroll:<name>"…), and
	// the renewals of them (their AuthorizedBy): what a leaked token or a
	// compromised ACME account obtained. Stores may answer it by scanning,
	// as Name.
	Requester string
	// Now decides "expired" for the Status filter.
	Now   time.Time
	Limit int
	// Cursor is the opaque next_cursor of the previous page (listing runs
	// oldest first).
	Cursor string
}

// RevokedEntry is one line of a CRL.
type RevokedEntry struct {
	Serial    string
	RevokedAt time.Time
	Reason    string
	NotAfter  time.Time
}

// CRLState is the latest CRL of one issuer.
type CRLState struct {
	Issuer string `json:"issuer"`
	// Number is decimal: ThisUpdate in Unix nanoseconds, or one more than
	// the previous CRL's number when this clock is behind the one that
	// signed it. CRLs are ordered by it (RFC 5280 §5.2.3), not by
	// ThisUpdate, which follows the clock even when that is stepped back.
	Number     string    `json:"number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	DER        []byte    `json:"der"`
	// LastScheduled is the thisUpdate of the latest scheduled (periodic,
	// not revocation-triggered) CRL: an expired entry is dropped only once a
	// scheduled CRL issued after its notAfter has listed it (RFC 5280 §3.3).
	LastScheduled time.Time `json:"last_scheduled"`
	// RevocationSeq is the issuer's RevocationSeq read before the entries
	// this CRL lists: every change it counts is on this CRL.
	RevocationSeq uint64 `json:"revocation_seq,omitempty"`
}

// Token is an API token as stored: never the secret, only its SHA-256.
type Token struct {
	ID         string    `json:"id"`
	SecretHash []byte    `json:"secret_hash"`
	Name       string    `json:"name"`
	Roles      []string  `json:"roles"`
	Admin      bool      `json:"admin"`
	ExpiresAt  time.Time `json:"expires_at"`
	CreatedAt  time.Time `json:"created_at"`
	// Once marks a single-use enrollment token bound to Names.
	Once  bool     `json:"once,omitempty"`
	Names []string `json:"names,omitempty"`
	// UsedAt is set when a single-use token is consumed.
	UsedAt time.Time `json:"used_at,omitzero"`
	// CreatedBy is who made it: "token:<id>" for an admin token through
	// the API, "admin-socket" for the CA host's operator through the
	// running server, "store" for `pkid token create` with serve stopped.
	// After an admin token leaks, the tokens it made are found by it.
	CreatedBy string `json:"created_by,omitempty"`
}

// Store is pkid's persistent state. All methods are safe for concurrent use.
type Store interface {
	// InsertCertificate durably commits a new record; ErrDuplicate if the
	// serial exists. In the same transaction it refuses a valid record
	// whose KeyHash is blocked (ErrKeyBlocked), or a renewal (Via "renew", whose
	// only authority is the certificate it replaces) whose Replaces is
	// revoked (ErrReplacedRevoked), so a revocation racing an issuance or a
	// renewal cannot be overtaken by it. A record with Replaces sets the
	// replaced record's ReplacedBy, unless it already has one. A record of
	// a serial listed without one (AddUnrecordedRevocation) is refused
	// unless it is revoked (ErrListedRevoked, ahead of ErrKeyBlocked); a
	// revoked one replaces that entry, so the CRL lists the serial once.
	InsertCertificate(ctx context.Context, rec *CertRecord) error
	// GetCertificate returns the record or ErrNotFound.
	GetCertificate(ctx context.Context, serial string) (*CertRecord, error)
	// ListCertificates returns records oldest first after f.Cursor, and
	// the cursor of the next page ("" at the end). A page may hold fewer
	// records than f.Limit, even none, and still have a next one: a store
	// may stop reading after a bound, so that a filter few records match
	// never holds the store for long. Callers follow the cursor to its end.
	ListCertificates(ctx context.Context, f ListFilter) ([]*CertRecord, string, error)
	// UpdateCertificate reads, changes and writes one record in one
	// transaction; fn's error aborts it. Indexes (revoked, blocked keys)
	// follow the record. A record that is revoked for keyCompromise
	// revokes with it, in the same transaction, every other certificate of
	// its key still valid at its RevokedAt (same time and reason), and
	// returns those as sameKey: a holder of the key must neither use nor
	// renew any of them.
	UpdateCertificate(ctx context.Context, serial string, fn func(*CertRecord) error) (rec *CertRecord, sameKey []*CertRecord, err error)
	// ListRevoked returns the revoked certificates of one issuer.
	ListRevoked(ctx context.Context, issuer string) ([]RevokedEntry, error)
	// AddUnrecordedRevocation lists e on issuer's CRL for a serial the
	// store holds no record of: a certificate that a CRL of this CA
	// revoked and that was issued after the store's copy was made, put
	// back after a restore (ca.Authority.ReapplyCRL). The entry counts in
	// RevocationSeq and is pruned as any other (by e.NotAfter). It is
	// false, with nothing written, when the serial has a record (revoke
	// that with UpdateCertificate) or is listed already; a keyCompromise
	// raises the lesser reason of one listed, keeping its time, as a
	// revocation may be raised.
	AddUnrecordedRevocation(ctx context.Context, issuer string, e RevokedEntry) (bool, error)
	// UnrecordedRevocation is issuer's CRL entry of serial listed without
	// a record (AddUnrecordedRevocation), or ErrNotFound: a certificate
	// revoked after a restored store's copy was made is not adopted.
	UnrecordedRevocation(ctx context.Context, issuer, serial string) (RevokedEntry, error)
	// RevocationSeq counts the changes to issuer's CRL entries (a
	// revocation, a reason raised), committed with them: a CRL publisher,
	// on this replica or another, compares it with the count its latest
	// CRL covered (CRLState.RevocationSeq) to see that a CRL is due
	// without being told, and keeps seeing it until a CRL commits.
	RevocationSeq(ctx context.Context, issuer string) (uint64, error)
	// PruneRevoked deletes from issuer's CRL list at most max entries
	// that expired before expiredBefore and were revoked before
	// revokedBefore: those a CRL publisher no longer lists once a
	// scheduled CRL has listed them after their expiry. The records stay
	// revoked (OCSP, /v1/certs and blocked keys do not change) and the
	// revocation count does not move; only the list each CRL reads
	// shrinks, so a CRL costs what is on it, not every revocation ever.
	PruneRevoked(ctx context.Context, issuer string, expiredBefore, revokedBefore time.Time, max int) (int, error)
	// KeyBlocked reports whether a key hash was revoked for keyCompromise.
	KeyBlocked(ctx context.Context, keyHash string) (bool, error)
	// PruneCertificates deletes at most max records that expired before
	// expiredBefore. Each call reads on, in insertion order, from where
	// the last one stopped, a bounded number of records, and wraps at the
	// end: calls repeated every tick reach every due record, and a
	// long-lived record holds none back. Only storage.retention asks for
	// it: by default every record is kept. A pruned certificate is unknown
	// from then on (OCSP "unknown", 404); the CRL list entries and blocked
	// keys stay.
	PruneCertificates(ctx context.Context, expiredBefore time.Time, max int) (int, error)

	// GetCRL returns the latest CRL of issuer or ErrNotFound.
	GetCRL(ctx context.Context, issuer string) (*CRLState, error)
	// PutCRL stores a CRL whose number is greater than the stored one's
	// (see CRLState.Follows), else ErrStale: the CRL number can never go
	// back.
	PutCRL(ctx context.Context, s *CRLState) error

	// PutToken creates a token; ErrDuplicate if the id exists.
	PutToken(ctx context.Context, t *Token) error
	GetToken(ctx context.Context, id string) (*Token, error)
	ListTokens(ctx context.Context) ([]*Token, error)
	DeleteToken(ctx context.Context, id string) error
	// UseToken marks a single-use token used at t; ErrStale if it was
	// already used, so two concurrent uses cannot both succeed.
	UseToken(ctx context.Context, id string, t time.Time) error
	// PruneTokens deletes at most max tokens that expired before
	// expiredBefore, oldest first, and says how many it deleted. Every
	// token expires (enrollment tokens within minutes), so without it a
	// CI farm minting one per job would grow the token list, and every
	// listing of it, for good. Its cost is what it deletes.
	PruneTokens(ctx context.Context, expiredBefore time.Time, max int) (int, error)

	// TakeAllowance spends, if spend, one of key's allowances under a
	// rate limit of certificates per period, and returns 0; with none
	// left it spends nothing and returns how long until one is. It is
	// kept here, not in a replica's memory, so replicas share one count
	// and a restart forgets none; two concurrent takes never both get the
	// last allowance. A count that reaches more than per past now was
	// left by a clock since stepped back, and is forgotten.
	TakeAllowance(ctx context.Context, key string, certificates int, per time.Duration, now time.Time, spend bool) (time.Duration, error)
	// PruneAllowances deletes at most max keys whose allowance was whole
	// again before now (a missing key reads as whole), and says how many
	// it deleted: keys of credentials that stopped issuing would
	// otherwise be kept for good.
	PruneAllowances(ctx context.Context, now time.Time, max int) (int, error)

	// WriteFailure returns when the store's last commit failed and why,
	// or a nil error when none has failed since one last succeeded: what
	// the failing requests' "internal error" hides (a full disk, a
	// database gone), for /healthz.
	WriteFailure() (time.Time, error)

	Close() error
}
