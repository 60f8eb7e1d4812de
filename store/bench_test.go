package store_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
				recs[i] = caRecord()
			}
			b.ResetTimer()
			insertAll(b, s, recs, conc)
		})
	}
}

// caRecord is a realistic record whose serial is shaped like the CA's
// (store.TimePrefix, then 128 random bits), so inserts meet the serial
// index where a running CA's do: at its end. storetest.Record's fully
// random serials would scatter them over every page of a large index.
func caRecord() *store.CertRecord {
	r := storetest.Record("bench")
	var b [20]byte
	binary.BigEndian.PutUint32(b[:4], store.TimePrefix(time.Now()))
	rand.Read(b[4:])
	r.Serial = fmt.Sprintf("%x", new(big.Int).SetBytes(b[:]))
	r.KeyHash = fmt.Sprintf("%x", sha256.Sum256(b[:])) // as long as a real one
	return r
}

// bigStore returns the path of a bbolt file holding n synthetic records of
// realistic size (~1.2 KB: a P-256 leaf's DER and its fields), made once
// and cached in $PKID_BENCH_DIR (default the OS temp dir) between runs.
func bigStore(b *testing.B, n int) string {
	b.Helper()
	dir := os.Getenv("PKID_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "pkid-bench")
	}
	os.MkdirAll(dir, 0o700)
	// The name says the layout: records in certFormatDER, serials shaped
	// like the CA's, the schema; a file of another layout would measure
	// that one (an older schema, its upgrade at every start).
	path := filepath.Join(dir, fmt.Sprintf("records-%d-der-caserial-s%d.db", n, store.SchemaVersion))
	if _, err := os.Stat(path + ".done"); err == nil {
		return path
	}
	os.Remove(path)
	s, err := store.OpenBolt(path)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan struct{}, 1024)
	for range 128 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				r := caRecord()
				r.Role = "bulk"
				r.DER = make([]byte, 700)
				rand.Read(r.DER)
				if err := s.InsertCertificate(context.Background(), r); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for range n {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	s.Close()
	os.WriteFile(path+".done", nil, 0o600)
	b.Logf("loaded %d records in %s", n, time.Since(start))
	return path
}

func rssKB() int {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// BenchmarkLargeStore compares concurrent durable inserts into an empty
// store and into one holding 1,000,000 records, and reports how long the
// large one takes to open and the process RSS. Run with
// -bench LargeStore -benchtime 5000x (the first run builds the file).
func BenchmarkLargeStore(b *testing.B) {
	big := bigStore(b, 1_000_000)
	for _, name := range []string{"empty", "1M"} {
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "pkid.db")
			if name == "1M" {
				copyFile(b, big, path)
			}
			t0 := time.Now()
			s, err := store.OpenBolt(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.GetCertificate(context.Background(), "1"); err == nil {
				b.Fatal("unexpected record")
			}
			openMS := float64(time.Since(t0).Microseconds()) / 1000
			defer s.Close()
			recs := make([]*store.CertRecord, b.N)
			for i := range recs {
				recs[i] = caRecord()
			}
			b.ResetTimer()
			insertAll(b, s, recs, 32)
			b.StopTimer()
			b.ReportMetric(float64(rssKB())/1024, "rss-MB")
			b.ReportMetric(openMS, "open-ms")
		})
	}
}

// BenchmarkListByStatus: the first page of each status listing over
// 1,000,000 records, all expired but the last 20, 10 of those revoked
// (short-lived certificates: what a CA's store mostly holds). The state
// index is read for every record the filter passes over; only the listed
// records are decoded. Run with -bench ListByStatus (the first run builds
// the file, as BenchmarkLargeStore does).
func BenchmarkListByStatus(b *testing.B) {
	s, now, _ := listStore(b)
	for _, status := range []string{store.StatusValid, store.StatusRevoked, "expired"} {
		b.Run(status, func(b *testing.B) {
			for b.Loop() {
				recs, _, err := s.ListCertificates(context.Background(), store.ListFilter{Status: status, Now: now, Limit: 100})
				if err != nil || len(recs) == 0 {
					b.Fatalf("%d records, %v", len(recs), err)
				}
			}
		})
	}
}

// BenchmarkListByName is a name lookup followed to the end of its cursor,
// as `pkid cert list --name` does: the filter has no index (issuance pays
// nothing for it), so it reads all 1,000,020 records, a page per 50,000.
func BenchmarkListByName(b *testing.B) {
	s, _, newest := listStore(b)
	for b.Loop() {
		if recs := storetest.ListAll(b, s, store.ListFilter{Name: newest.Names[0], Limit: 100}); len(recs) != 1 {
			b.Fatalf("%d records", len(recs))
		}
	}
}

// BenchmarkKeyCompromise is one keyCompromise revocation over 1,000,020
// records: its commit reads every state entry for the key's other
// certificates (revokeSameKey), and revokes the one there is. Writers
// wait behind it, so its time is the stall a revocation puts on issuance.
func BenchmarkKeyCompromise(b *testing.B) {
	s, now, _ := listStore(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		pair := []*store.CertRecord{caRecord(), caRecord()}
		for _, r := range pair {
			r.KeyHash, r.NotAfter = pair[0].KeyHash, now.Add(time.Hour)
			if err := s.InsertCertificate(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		_, sameKey, err := s.UpdateCertificate(ctx, pair[0].Serial, func(r *store.CertRecord) error {
			r.Status, r.RevokedAt, r.Reason = store.StatusRevoked, now, "keyCompromise"
			return nil
		})
		if err != nil || len(sameKey) != 1 {
			b.Fatalf("%d revoked with it, %v", len(sameKey), err)
		}
	}
}

// listStore opens a copy of the 1,000,000-record store with 20 records
// added that expire in an hour, every other one revoked; it returns the
// store, the time the statuses hold at and the newest record.
func listStore(b *testing.B) (store.Store, time.Time, *store.CertRecord) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "pkid.db")
	copyFile(b, bigStore(b, 1_000_000), path)
	s, err := store.OpenBolt(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	now := time.Now()
	var r *store.CertRecord
	for i := range 20 {
		r = caRecord()
		r.NotAfter = now.Add(time.Hour)
		if err := s.InsertCertificate(ctx, r); err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 {
			storetest.Revoke(b, s, r.Serial, now, "superseded")
		}
	}
	return s, now, r
}

func copyFile(b *testing.B, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	// Flush the copy now, or the store's first commit pays for it.
	if err := out.Sync(); err != nil {
		b.Fatal(err)
	}
	out.Close()
}

// insertAll inserts recs from conc goroutines.
func insertAll(b *testing.B, s store.Store, recs []*store.CertRecord, conc int) {
	var wg sync.WaitGroup
	next := make(chan int, len(recs))
	for i := range recs {
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
}
