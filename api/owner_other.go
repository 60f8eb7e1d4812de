//go:build !unix

package api

// SameOwnerAs does nothing where files have no Unix owner: pkid serves on
// Unix systems, and builds elsewhere for its client commands.
func SameOwnerAs(path, dir string) error { return nil }
