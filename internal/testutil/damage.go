package testutil

import (
	"encoding/binary"
	"os"
	"testing"
)

// ZeroFreelist overwrites with zeros the freelist page each of a closed
// bbolt file's two meta pages names: damage bbolt finds only when it
// opens the file for writing (it panics there).
func ZeroFreelist(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := int64(os.Getpagesize())
	for meta := range int64(2) {
		// A meta page: a 16-byte page header, then magic, version, page
		// size, flags (4 bytes each) and the root bucket (16): the
		// freelist's page id is at byte 48.
		var id [8]byte
		if _, err := f.ReadAt(id[:], meta*page+48); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, page), int64(binary.LittleEndian.Uint64(id[:]))*page); err != nil {
			t.Fatal(err)
		}
	}
}
