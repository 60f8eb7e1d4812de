package acme

import "strings"

// linker builds every ACME URL of a role from external_url, so handlers
// never join paths themselves.
type linker struct{ base string }

func newLinker(externalURL string) linker {
	return linker{base: strings.TrimSuffix(externalURL, "/") + "/acme/"}
}

func (l linker) role(role string) string       { return l.base + role }
func (l linker) directory(role string) string  { return l.role(role) + "/directory" }
func (l linker) newNonce(role string) string   { return l.role(role) + "/new-nonce" }
func (l linker) newAccount(role string) string { return l.role(role) + "/new-account" }
func (l linker) newOrder(role string) string   { return l.role(role) + "/new-order" }
func (l linker) revokeCert(role string) string { return l.role(role) + "/revoke-cert" }
func (l linker) keyChange(role string) string  { return l.role(role) + "/key-change" }
func (l linker) renewalInfo(role string) string {
	return l.role(role) + "/renewal-info"
}
func (l linker) account(role, id string) string {
	return l.role(role) + "/acct/" + id
}
func (l linker) orders(role, id string) string { return l.account(role, id) + "/orders" }
func (l linker) order(role, id string) string  { return l.role(role) + "/order/" + id }
func (l linker) finalize(role, id string) string {
	return l.order(role, id) + "/finalize"
}
func (l linker) authz(role, id string) string { return l.role(role) + "/authz/" + id }
func (l linker) challenge(role, authzID, typ string) string {
	return l.role(role) + "/chall/" + authzID + "/" + typ
}
func (l linker) cert(role, serial string) string { return l.role(role) + "/cert/" + serial }
