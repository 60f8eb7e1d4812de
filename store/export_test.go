package store

// SetListScanBudget makes every ListCertificates call read at most n
// records until the returned function restores the bound.
func SetListScanBudget(n int) (restore func()) {
	old := listScanBudget
	listScanBudget = n
	return func() { listScanBudget = old }
}
