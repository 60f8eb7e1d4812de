//go:build !unix

package api

import "errors"

// diskFree is not measured on this platform: no warning, no metric.
func diskFree(string) (uint64, error) {
	return 0, errors.New("free disk space is not measured on this platform")
}
