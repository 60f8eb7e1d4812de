package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"pkid/store"
	"pkid/store/storetest"
)

// BenchmarkInsert measures durable inserts one at a time and from 32
// concurrent callers, where the commit loop groups them.
func BenchmarkInsert(b *testing.B) {
	for _, conc := range []int{1, 32} {
		b.Run(map[int]string{1: "alone", 32: "concurrent32"}[conc], func(b *testing.B) {
			s, err := store.OpenBolt(filepath.Join(b.TempDir(), "pkid.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			recs := make([]*store.CertRecord, b.N)
			for i := range recs {
				recs[i] = storetest.Record("bench")
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			next := make(chan int, b.N)
			for i := range b.N {
				next <- i
			}
			close(next)
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						if err := s.InsertCertificate(context.Background(), recs[i]); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}
