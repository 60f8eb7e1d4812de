package api

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"

	"pkid/internal/atomicfile"
)

// appendFile is a file beside the store that pkid only appends to (the
// withdrawal journal, the offline audit log), opened for one writer.
type appendFile struct {
	*os.File
	dir string
	// made: this open created the file, which then takes the store
	// directory's owner when closed (admin commands run as root, serve
	// under its own user, which must go on reading and writing it).
	made bool
}

// openAppend opens path, in the store directory dir, for appending,
// creating it 0600. A file whose last line was cut short (a crash, or a
// full disk, in the middle of a write) first gets the newline it lacks:
// that line stays one line that does not parse, skipped when the file is
// read, instead of swallowing the next line written.
func openAppend(path, dir string) (*appendFile, error) {
	_, err := os.Stat(path)
	made := errors.Is(err, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := endLine(f); err != nil {
		f.Close()
		return nil, err
	}
	return &appendFile{File: f, dir: dir, made: made}, nil
}

// endLine appends a newline to f unless it is empty or ends with one.
// Two writers may both add one; readLines skips the empty line that
// leaves.
func endLine(f *os.File) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], fi.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	_, err = f.Write([]byte{'\n'})
	return err
}

// readLines calls fn with each line of r that is not empty, numbered from
// 1, without its newline. A line may be of any length: one cut short and
// run on with junk (zeros a crash left) is passed like any other, and
// the lines after it are read.
func readLines(r io.Reader, fn func(n int, line []byte)) error {
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimRight(line, "\r\n"); len(line) > 0 {
			fn(n, line)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Close flushes what was written to disk, closes the file and, if this
// open made it, makes its name durable too (the directory's fsync: a
// journal line flushed into a file that a crash then unlinks would be
// lost all the same) and gives it the directory's owner.
func (f *appendFile) Close() error {
	err := f.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil && f.made {
		err = atomicfile.SyncDir(filepath.Dir(f.Name()))
	}
	if err == nil && f.made {
		err = SameOwnerAs(f.Name(), f.dir)
	}
	return err
}
