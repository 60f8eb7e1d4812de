//go:build !unix

package api

// sameOwnerAs does nothing where files have no Unix owner: pkid serves on
// Unix systems, and builds elsewhere for its client commands.
func sameOwnerAs(path, dir string) error { return nil }
