package api

import (
	"errors"
	"os"
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
// creating it 0600.
func openAppend(path, dir string) (*appendFile, error) {
	_, err := os.Stat(path)
	made := errors.Is(err, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &appendFile{File: f, dir: dir, made: made}, nil
}

// Close flushes what was written to disk, closes the file and, if this
// open made it, gives it the directory's owner.
func (f *appendFile) Close() error {
	err := f.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil && f.made {
		err = SameOwnerAs(f.Name(), f.dir)
	}
	return err
}
