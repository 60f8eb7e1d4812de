package store

import (
	"context"
	"encoding/json"
	"slices"
	"time"
)

// ACME object statuses (RFC 8555 §7.1.6).
const (
	ACMEPending     = "pending"
	ACMEReady       = "ready"
	ACMEProcessing  = "processing"
	ACMEValid       = "valid"
	ACMEInvalid     = "invalid"
	ACMEDeactivated = "deactivated"
	ACMERevoked     = "revoked"
	ACMEExpired     = "expired"
)

// ACMEAccount is an ACME account of one role's directory.
type ACMEAccount struct {
	ID            string          `json:"id"`
	Role          string          `json:"role"`
	KeyThumbprint string          `json:"key_thumbprint"` // RFC 7638, base64url
	JWK           json.RawMessage `json:"jwk"`
	Contact       []string        `json:"contact,omitempty"`
	Status        string          `json:"status"`
	EABKeyID      string          `json:"eab_kid,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	// Source is the client address that registered the account (an
	// IPv6 address's /64), "" for accounts made before it was kept: what
	// acme.new_accounts counts, and what tells an operator which host a
	// client runs on. It and CreatedAt never change.
	Source string `json:"source,omitempty"`
}

// ACMEIdentifier is a dns or ip identifier.
type ACMEIdentifier struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ACMEOrder is an order (RFC 8555 §7.1.3).
type ACMEOrder struct {
	ID          string           `json:"id"`
	AccountID   string           `json:"account_id"`
	Role        string           `json:"role"`
	Status      string           `json:"status"`
	Identifiers []ACMEIdentifier `json:"identifiers"`
	AuthzIDs    []string         `json:"authz_ids"`
	// Expires is fixed at creation (the store indexes it then).
	Expires    time.Time `json:"expires"`
	CertSerial string    `json:"cert_serial,omitempty"`
	// Error is the ACME problem document that made the order invalid.
	Error     json.RawMessage `json:"error,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	// ProcessingSince is when finalize began signing: an order still
	// processing long after it was interrupted (the CA stopped mid-way).
	ProcessingSince time.Time `json:"processing_since,omitzero"`
	// PendingSerial is the serial finalize reserved and wrote with the
	// processing status, before signing: if the CA stops between the
	// certificate's commit and the order's, the order still finds its
	// certificate by it.
	PendingSerial string `json:"pending_serial,omitempty"`
	// Replaces is the RFC 9773 certificate identifier the order named in
	// "replaces", checked at newOrder; the order echoes it.
	Replaces string `json:"replaces,omitempty"`
	// ReplacesSerial is the serial of the certificate the order replaces:
	// the one Replaces names, if the store holds its record (else, and in
	// orders stored before pkid kept it, empty: the order replaces
	// nothing). Finalize links the new certificate to it, and the store
	// lets go of the order's claim on it (ClaimReplacement) when it prunes
	// the order.
	ReplacesSerial string `json:"replaces_serial,omitempty"`
	// Profile is the profile the order asked for (only ever its role's),
	// kept so the order can echo it.
	Profile string `json:"profile,omitempty"`
}

// ACMEChallenge is one way to prove control of an identifier.
type ACMEChallenge struct {
	Type      string          `json:"type"`
	Token     string          `json:"token"`
	Status    string          `json:"status"`
	Validated time.Time       `json:"validated,omitzero"`
	Error     json.RawMessage `json:"error,omitempty"`
}

// ACMEAuthz is an authorization (RFC 8555 §7.1.4).
type ACMEAuthz struct {
	ID         string         `json:"id"`
	AccountID  string         `json:"account_id"`
	Role       string         `json:"role"`
	Identifier ACMEIdentifier `json:"identifier"`
	Wildcard   bool           `json:"wildcard,omitempty"`
	Status     string         `json:"status"`
	// Expires is fixed at creation (the store indexes it then).
	Expires     time.Time       `json:"expires"`
	Challenges  []ACMEChallenge `json:"challenges"`
	ValidatedAt time.Time       `json:"validated_at,omitzero"`
}

// EABKey is an external account binding key (RFC 8555 §7.3.4). The HMAC
// key must be usable later, so it is kept sealed (encrypted), not hashed.
type EABKey struct {
	KID       string    `json:"kid"`
	Role      string    `json:"role"`
	Sealed    []byte    `json:"sealed"`
	CreatedAt time.Time `json:"created_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	AccountID string    `json:"account_id,omitempty"`
}

// ACMEStore keeps ACME state, so a restart loses no account, order or
// authorization. Updates are read-modify-write in one transaction.
type ACMEStore interface {
	// CreateAccount fails with ErrDuplicate if the key already has an
	// account in the role.
	CreateAccount(ctx context.Context, a *ACMEAccount) error
	GetAccount(ctx context.Context, id string) (*ACMEAccount, error)
	// GetAccountByKey finds the account of a key thumbprint in a role.
	GetAccountByKey(ctx context.Context, role, thumbprint string) (*ACMEAccount, error)
	// UpdateAccount applies fn; a changed KeyThumbprint moves the key index
	// and fails with ErrDuplicate if the new key has an account. The ID,
	// role, source and creation time cannot change.
	UpdateAccount(ctx context.Context, id string, fn func(*ACMEAccount) error) (*ACMEAccount, error)
	// ListAccounts returns the accounts of role ("" for every role),
	// oldest first (ties by ID): which ACME clients an operator has, and the IDs
	// `pkid acme account revoke` takes.
	ListAccounts(ctx context.Context, role string) ([]*ACMEAccount, error)
	// AccountsFrom counts, up to max, the accounts registered from source
	// (an ACMEAccount's Source, never "") at or after since, in every
	// role, and says when the first of them was created. newAccount
	// bounds how many accounts one client address may register
	// (acme.new_accounts): accounts are kept for good, and a client that
	// registers at every run, or a loop, would otherwise grow the store
	// without end, and pass every per-account bound with fresh accounts.
	AccountsFrom(ctx context.Context, source string, since time.Time, max int) (n int, oldest time.Time, err error)

	// CreateOrder stores an order and its new authorizations together.
	CreateOrder(ctx context.Context, o *ACMEOrder, authzs []*ACMEAuthz) error
	GetOrder(ctx context.Context, id string) (*ACMEOrder, error)
	UpdateOrder(ctx context.Context, id string, fn func(*ACMEOrder) error) (*ACMEOrder, error)
	// ListOrders returns a page of at most limit (all when limit <= 0) of
	// an account's order IDs, oldest first, starting after cursor ("" for
	// the first page), and the cursor of the next page ("" after the
	// last); ErrNotFound for a cursor it did not give.
	ListOrders(ctx context.Context, accountID, cursor string, limit int) (ids []string, next string, err error)

	// UnfinishedOrders counts, up to max, the account's orders created at
	// or after since that have not become valid (pending, ready,
	// processing or invalid: none ended in a certificate), and says when
	// the first of them was created. newOrder bounds how many orders an
	// account may leave unfinished (acme.unfinished_orders), since each
	// one, and its authorizations, is kept until a week after it expires.
	UnfinishedOrders(ctx context.Context, accountID string, since time.Time, max int) (n int, oldest time.Time, err error)

	GetAuthz(ctx context.Context, id string) (*ACMEAuthz, error)
	UpdateAuthz(ctx context.Context, id string, fn func(*ACMEAuthz) error) (*ACMEAuthz, error)
	// FindValidAuthz returns a valid, unexpired authorization of the account
	// for the identifier that was validated at or after since, for reuse.
	FindValidAuthz(ctx context.Context, accountID string, id ACMEIdentifier, wildcard bool, since, now time.Time) (*ACMEAuthz, error)

	// PruneACME deletes at most max orders and authorizations that
	// expired before before, and says how many it deleted; the caller
	// repeats while it gets max. Expired objects serve no client (their
	// certificates stay in the certificate records), and without pruning
	// every order ever placed would be kept.
	PruneACME(ctx context.Context, before time.Time, max int) (int, error)

	// ReplacementOrder is the ID of the order that holds the claim to
	// replace the certificate serial (RFC 9773 §5), ErrNotFound if no
	// order does. The order it names may since have failed, expired or
	// been pruned: whether the claim still counts is the caller's
	// judgement, which derives an order's status from its
	// authorizations.
	ReplacementOrder(ctx context.Context, serial string) (string, error)
	// ClaimReplacement gives the claim on serial to order, if the claim is
	// now held by prev ("" for no order): the caller found prev finished
	// and so no longer replacing it. ErrStale if another order holds it,
	// so of two orders racing to replace one certificate only one wins.
	// The claim is dropped with its order when PruneACME deletes it.
	ClaimReplacement(ctx context.Context, serial, prev, order string) error

	// PutEABKey stores a new binding key; ErrDuplicate if the KID exists.
	PutEABKey(ctx context.Context, k *EABKey) error
	GetEABKey(ctx context.Context, kid string) (*EABKey, error)
	// UseEABKey binds the key to an account once; ErrStale if used before.
	UseEABKey(ctx context.Context, kid, accountID string, at time.Time) error
	// ListEABKeys returns every binding key, used or not, oldest first,
	// so an operator can see which were handed out and never used.
	ListEABKeys(ctx context.Context) ([]*EABKey, error)
	// DeleteEABKey withdraws a binding key nobody has used (one that
	// leaked, or was made for the wrong role): ErrNotFound if there is
	// none, ErrStale if an account was bound with it, since deleting the
	// key would not undo that account.
	DeleteEABKey(ctx context.Context, kid string) error
}

// clone copies a so a caller's changes never reach a cache.
func (a *ACMEAccount) clone() *ACMEAccount {
	c := *a
	c.JWK = slices.Clone(a.JWK)
	c.Contact = slices.Clone(a.Contact)
	return &c
}

// clone copies o so a caller's changes never reach a cache.
func (o *ACMEOrder) clone() *ACMEOrder {
	c := *o
	c.Identifiers = slices.Clone(o.Identifiers)
	c.AuthzIDs = slices.Clone(o.AuthzIDs)
	c.Error = slices.Clone(o.Error)
	return &c
}

// clone copies a so a caller's changes never reach a cache.
func (a *ACMEAuthz) clone() *ACMEAuthz {
	c := *a
	c.Challenges = slices.Clone(a.Challenges)
	for i := range c.Challenges {
		c.Challenges[i].Error = slices.Clone(c.Challenges[i].Error)
	}
	return &c
}
