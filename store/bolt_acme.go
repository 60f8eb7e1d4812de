package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bAccounts     = []byte("acme_accounts")
	bAccountKeys  = []byte("acme_account_keys") // role \x00 thumbprint -> id
	bOrders       = []byte("acme_orders")
	bOrdersByAcct = []byte("acme_orders_by_account") // account \x00 sequence (16 hex) \x00 id -> nil
	bAuthzs       = []byte("acme_authzs")
	bAuthzsByAcct = []byte("acme_authzs_by_account") // account \x00 type:value -> latest authz id
	bEAB          = []byte("acme_eab")               // kid -> EABKey JSON
	// bACMEExpiry orders every order and authorization by expiry for
	// PruneACME: expires (8 bytes, big-endian Unix seconds) kind ('o' or
	// 'a') id -> the order's acme_orders_by_account key (nil for an
	// authorization).
	bACMEExpiry = []byte("acme_expiry")
	// bReplacements: serial -> the ID of the order that claimed to replace
	// that certificate (ClaimReplacement).
	bReplacements = []byte("acme_replacements")
)

const (
	expiryOrder = 'o'
	expiryAuthz = 'a'
)

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

func keyIdx(role, thumb string) []byte { return []byte(role + "\x00" + thumb) }

// CreateAccount implements ACMEStore.
func (b *Bolt) CreateAccount(ctx context.Context, a *ACMEAccount) error {
	err := b.write(ctx, func(tx *bolt.Tx) error {
		keys := tx.Bucket(bAccountKeys)
		if keys.Get(keyIdx(a.Role, a.KeyThumbprint)) != nil || tx.Bucket(bAccounts).Get([]byte(a.ID)) != nil {
			return ErrDuplicate
		}
		if err := keys.Put(keyIdx(a.Role, a.KeyThumbprint), []byte(a.ID)); err != nil {
			return err
		}
		if a.Source != "" {
			if err := tx.Bucket(bAccountSources).Put(timeKey(a.Source, a.CreatedAt, a.ID), nil); err != nil {
				return err
			}
		}
		return putJSON(tx.Bucket(bAccounts), []byte(a.ID), a)
	})
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return nil
}

// ListAccounts implements ACMEStore.
func (b *Bolt) ListAccounts(ctx context.Context, role string) ([]*ACMEAccount, error) {
	out, err := listJSON(b.db, bAccounts, func(a *ACMEAccount) bool { return role == "" || a.Role == role })
	if err != nil {
		return nil, fmt.Errorf("list ACME accounts: %w", err)
	}
	slices.SortStableFunc(out, func(a, b *ACMEAccount) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// listJSON decodes every object of bucket that keep accepts, in key order.
func listJSON[T any](db *bolt.DB, bucket []byte, keep func(*T) bool) ([]*T, error) {
	var out []*T
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			o, err := decodeJSON[T](k, v)
			if err == nil && keep(o) {
				out = append(out, o)
			}
			return err
		})
	})
	return out, err
}

// GetAccount implements ACMEStore.
func (b *Bolt) GetAccount(ctx context.Context, id string) (*ACMEAccount, error) {
	var a *ACMEAccount
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		a, err = b.accounts.get(tx.Bucket(bAccounts), []byte(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get account %s: %w", id, err)
	}
	return a, nil
}

// GetAccountByKey implements ACMEStore.
func (b *Bolt) GetAccountByKey(ctx context.Context, role, thumb string) (*ACMEAccount, error) {
	var a *ACMEAccount
	err := b.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bAccountKeys).Get(keyIdx(role, thumb))
		if id == nil {
			return ErrNotFound
		}
		var err error
		a, err = b.accounts.get(tx.Bucket(bAccounts), id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get account by key: %w", err)
	}
	return a, nil
}

// UpdateAccount implements ACMEStore.
func (b *Bolt) UpdateAccount(ctx context.Context, id string, fn func(*ACMEAccount) error) (*ACMEAccount, error) {
	var a *ACMEAccount
	err := b.write(ctx, func(tx *bolt.Tx) error {
		var err error
		a, err = b.accounts.get(tx.Bucket(bAccounts), []byte(id))
		if err != nil {
			return err
		}
		oldRole, oldThumb, source, created := a.Role, a.KeyThumbprint, a.Source, a.CreatedAt
		if err := fn(a); err != nil {
			return err
		}
		if a.ID != id || a.Role != oldRole || a.Source != source || !a.CreatedAt.Equal(created) {
			return fmt.Errorf("an account's id, role, source and creation time cannot change")
		}
		if a.KeyThumbprint != oldThumb {
			keys := tx.Bucket(bAccountKeys)
			if keys.Get(keyIdx(a.Role, a.KeyThumbprint)) != nil {
				return ErrDuplicate
			}
			if err := keys.Delete(keyIdx(a.Role, oldThumb)); err != nil {
				return err
			}
			if err := keys.Put(keyIdx(a.Role, a.KeyThumbprint), []byte(a.ID)); err != nil {
				return err
			}
		}
		return putJSON(tx.Bucket(bAccounts), []byte(id), a)
	})
	if err != nil {
		return nil, fmt.Errorf("update account %s: %w", id, err)
	}
	return a, nil
}

// orderIdx orders an account's orders by an insertion sequence, not by
// time: two orders made in the same clock tick keep their order.
func orderIdx(o *ACMEOrder, seq uint64) []byte {
	return fmt.Appendf(nil, "%s\x00%016x\x00%s", o.AccountID, seq, o.ID)
}

func identKey(acct string, id ACMEIdentifier, wildcard bool) []byte {
	w := ""
	if wildcard {
		w = "*"
	}
	return []byte(acct + "\x00" + id.Type + ":" + w + id.Value)
}

// ACME writes, like every write, go through the shared commit loop: the
// many small updates of concurrent orders share commits with issuance.

// CreateOrder implements ACMEStore.
func (b *Bolt) CreateOrder(ctx context.Context, o *ACMEOrder, authzs []*ACMEAuthz) error {
	err := b.write(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bOrders).Get([]byte(o.ID)) != nil {
			return ErrDuplicate
		}
		for _, az := range authzs {
			if tx.Bucket(bAuthzs).Get([]byte(az.ID)) != nil {
				return ErrDuplicate
			}
			if err := putJSON(tx.Bucket(bAuthzs), []byte(az.ID), az); err != nil {
				return err
			}
			if err := tx.Bucket(bAuthzsByAcct).Put(identKey(az.AccountID, az.Identifier, az.Wildcard), []byte(az.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bACMEExpiry).Put(expiryKey(az.Expires, string(expiryAuthz)+az.ID), nil); err != nil {
				return err
			}
		}
		idx := tx.Bucket(bOrdersByAcct)
		seq, err := idx.NextSequence()
		if err != nil {
			return err
		}
		if err := idx.Put(orderIdx(o, seq), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bACMEExpiry).Put(expiryKey(o.Expires, string(expiryOrder)+o.ID), orderIdx(o, seq)); err != nil {
			return err
		}
		if err := noteUnfinished(tx, o, ""); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bOrders), []byte(o.ID), o)
	})
	if err != nil {
		return fmt.Errorf("create order: %w", err)
	}
	return nil
}

// GetOrder implements ACMEStore.
func (b *Bolt) GetOrder(ctx context.Context, id string) (*ACMEOrder, error) {
	var o *ACMEOrder
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		o, err = b.orders.get(tx.Bucket(bOrders), []byte(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get order %s: %w", id, err)
	}
	return o, nil
}

// UpdateOrder implements ACMEStore.
func (b *Bolt) UpdateOrder(ctx context.Context, id string, fn func(*ACMEOrder) error) (*ACMEOrder, error) {
	var o *ACMEOrder
	err := b.write(ctx, func(tx *bolt.Tx) error {
		var err error
		o, err = b.orders.get(tx.Bucket(bOrders), []byte(id))
		if err != nil {
			return err
		}
		acct, created, was := o.AccountID, o.CreatedAt, o.Status
		if err := fn(o); err != nil {
			return err
		}
		if o.ID != id || o.AccountID != acct || !o.CreatedAt.Equal(created) {
			return fmt.Errorf("order id, account and creation time cannot change")
		}
		if err := noteUnfinished(tx, o, was); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bOrders), []byte(id), o)
	})
	if err != nil {
		return nil, fmt.Errorf("update order %s: %w", id, err)
	}
	return o, nil
}

// ListOrders implements ACMEStore. The cursor is the sequence (16 hex
// digits) of the page's last order in the account's index.
func (b *Bolt) ListOrders(ctx context.Context, accountID, cursor string, limit int) ([]string, string, error) {
	var ids []string
	next := ""
	prefix := []byte(accountID + "\x00")
	start := prefix
	if cursor != "" {
		if len(cursor) != 16 || strings.Trim(cursor, "0123456789abcdef") != "" {
			return nil, "", fmt.Errorf("list orders: cursor %q: %w", cursor, ErrNotFound)
		}
		// Past every key of that sequence: "seq\x00id" < "seq\x01".
		start = append([]byte(accountID+"\x00"+cursor), 1)
	}
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOrdersByAcct).Cursor()
		last := ""
		for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rest := k[len(prefix):] // sequence (16 hex) \x00 id
			if limit > 0 && len(ids) == limit {
				next = last // more follow: the cursor is the last one returned
				return nil
			}
			ids, last = append(ids, string(rest[17:])), string(rest[:16])
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list orders: %w", err)
	}
	return ids, next, nil
}

// GetAuthz implements ACMEStore.
func (b *Bolt) GetAuthz(ctx context.Context, id string) (*ACMEAuthz, error) {
	var a *ACMEAuthz
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		a, err = b.authzs.get(tx.Bucket(bAuthzs), []byte(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get authz %s: %w", id, err)
	}
	return a, nil
}

// UpdateAuthz implements ACMEStore.
func (b *Bolt) UpdateAuthz(ctx context.Context, id string, fn func(*ACMEAuthz) error) (*ACMEAuthz, error) {
	var a *ACMEAuthz
	err := b.write(ctx, func(tx *bolt.Tx) error {
		var err error
		a, err = b.authzs.get(tx.Bucket(bAuthzs), []byte(id))
		if err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bAuthzs), []byte(id), a)
	})
	if err != nil {
		return nil, fmt.Errorf("update authz %s: %w", id, err)
	}
	return a, nil
}

// FindValidAuthz implements ACMEStore. Only the latest authorization per
// account and identifier is indexed, which is the one worth reusing.
func (b *Bolt) FindValidAuthz(ctx context.Context, accountID string, id ACMEIdentifier, wildcard bool, since, now time.Time) (*ACMEAuthz, error) {
	var a *ACMEAuthz
	err := b.db.View(func(tx *bolt.Tx) error {
		aid := tx.Bucket(bAuthzsByAcct).Get(identKey(accountID, id, wildcard))
		if aid == nil {
			return ErrNotFound
		}
		got, err := b.authzs.get(tx.Bucket(bAuthzs), aid)
		if err != nil {
			return err
		}
		if got.Status != ACMEValid || !now.Before(got.Expires) || got.ValidatedAt.Before(since) {
			return ErrNotFound
		}
		a = got
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find valid authz: %w", err)
	}
	return a, nil
}

// PutEABKey implements ACMEStore.
func (b *Bolt) PutEABKey(ctx context.Context, k *EABKey) error {
	err := b.write(ctx, func(tx *bolt.Tx) error {
		bkt := tx.Bucket(bEAB)
		if bkt.Get([]byte(k.KID)) != nil {
			return ErrDuplicate
		}
		return putJSON(bkt, []byte(k.KID), k)
	})
	if err != nil {
		return fmt.Errorf("put EAB key: %w", err)
	}
	return nil
}

// GetEABKey implements ACMEStore.
func (b *Bolt) GetEABKey(ctx context.Context, kid string) (*EABKey, error) {
	var k *EABKey
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		k, err = getJSON[EABKey](tx.Bucket(bEAB), []byte(kid))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get EAB key %s: %w", kid, err)
	}
	return k, nil
}

// ListEABKeys implements ACMEStore.
func (b *Bolt) ListEABKeys(ctx context.Context) ([]*EABKey, error) {
	out, err := listJSON(b.db, bEAB, func(*EABKey) bool { return true })
	if err != nil {
		return nil, fmt.Errorf("list EAB keys: %w", err)
	}
	slices.SortStableFunc(out, func(a, b *EABKey) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// DeleteEABKey implements ACMEStore.
func (b *Bolt) DeleteEABKey(ctx context.Context, kid string) error {
	err := b.write(ctx, func(tx *bolt.Tx) error {
		if _, err := unusedEAB(tx, kid); err != nil {
			return err
		}
		return tx.Bucket(bEAB).Delete([]byte(kid))
	})
	if err != nil {
		return fmt.Errorf("delete EAB key %s: %w", kid, err)
	}
	return nil
}

// UseEABKey implements ACMEStore.
func (b *Bolt) UseEABKey(ctx context.Context, kid, accountID string, at time.Time) error {
	err := b.write(ctx, func(tx *bolt.Tx) error {
		k, err := unusedEAB(tx, kid)
		if err != nil {
			return err
		}
		k.UsedAt, k.AccountID = at, accountID
		return putJSON(tx.Bucket(bEAB), []byte(kid), k)
	})
	if err != nil {
		return fmt.Errorf("use EAB key %s: %w", kid, err)
	}
	return nil
}

// unusedEAB reads the binding key kid for a write that needs it unused:
// ErrNotFound if there is none, ErrStale once an account was bound with it.
func unusedEAB(tx *bolt.Tx, kid string) (*EABKey, error) {
	k, err := getJSON[EABKey](tx.Bucket(bEAB), []byte(kid))
	if err != nil {
		return nil, err
	}
	if !k.UsedAt.IsZero() {
		return nil, ErrStale
	}
	return k, nil
}
