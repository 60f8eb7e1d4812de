//go:build !linux

package unixsock

import "fmt"

// viaDir has no short name for path outside Linux.
func viaDir(path string, _ func(string) error) error {
	return fmt.Errorf("unix socket %s: the path is longer than %d bytes; move the CA directory to a shorter path", path, maxPath)
}
