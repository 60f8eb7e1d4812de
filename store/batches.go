package store

// InBatches runs step (a prune of at most max objects, saying how many it
// deleted) until it deletes fewer than max or fails, and returns how many
// it deleted in all. A store's prunes run as many short transactions so
// that issuance, sharing the store's writer, never waits long behind one.
func InBatches(max int, step func(max int) (int, error)) (int, error) {
	total := 0
	for {
		n, err := step(max)
		total += n
		if err != nil || n < max {
			return total, err
		}
	}
}
