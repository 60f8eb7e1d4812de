// Package atomicfile replaces files so readers never see a partial one.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to a temporary file beside path with mode from the
// start, fsyncs it and renames it over path.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return WriteFrom(path, mode, writeData(data), nil)
}

// File is one file of a set that WriteFiles replaces together.
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
}

// WriteFiles replaces files in the order given, as a certificate and its
// key must be: every new file is written and fsynced beside its target
// first, and only then are they renamed over their targets, one right
// after the other, and their directories fsynced. So a reader sees a
// mismatched set only for the time between two renames (it retries), and
// a failure to write any of them (a full disk, a missing directory), or
// to rename one of them, leaves every old file as it was: the renames
// already done are undone, so a certificate is never left beside a key
// that is not its own (a renewal daemon could not authenticate with it).
func WriteFiles(files ...File) error {
	return writeFiles(os.Rename, files)
}

// writeFiles is WriteFiles with the rename it does, so a test can make
// one fail after another has succeeded.
func writeFiles(rename func(from, to string) error, files []File) error {
	tmps := make([]string, 0, len(files))
	defer func() {
		for _, t := range tmps {
			os.Remove(t) // gone already once renamed
		}
	}()
	for _, f := range files {
		tmp, err := stageFrom(f.Path, f.Mode, writeData(f.Data))
		if err != nil {
			return err
		}
		tmps = append(tmps, tmp)
	}
	olds := make([]string, len(files))
	defer func() {
		for _, o := range olds {
			if o != "" {
				os.Remove(o) // gone already if put back
			}
		}
	}()
	for i, f := range files {
		old, err := keepOld(f.Path, tmps[i]+".old")
		if err != nil {
			return err
		}
		olds[i] = old
	}
	for i, f := range files {
		if err := rename(tmps[i], f.Path); err != nil {
			err = fmt.Errorf("replace %s: %w", f.Path, err)
			return errors.Join(err, putBack(files[:i], olds[:i]), syncDirs(files))
		}
	}
	return syncDirs(files)
}

// keepOld gives the file at path a second name, old, so that it can be put
// back: a hard link, or a copy where the file system has none. It returns
// "" when there is no file at path.
func keepOld(path, old string) (string, error) {
	err := os.Link(path, old)
	if err == nil {
		return old, nil
	}
	fi, serr := os.Lstat(path)
	if errors.Is(serr, fs.ErrNotExist) {
		return "", nil
	}
	if serr != nil {
		return "", fmt.Errorf("keep %s: %w", path, serr)
	}
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("keep %s: %w", path, err)
	}
	data, rerr := os.ReadFile(path)
	if rerr != nil {
		return "", fmt.Errorf("keep %s: %w", path, rerr)
	}
	return stageFrom(path, fi.Mode().Perm(), writeData(data))
}

// putBack undoes the renames of files, the last first: each old file
// returns to its name, and a file that was new is removed.
func putBack(files []File, olds []string) error {
	var errs []error
	for i := len(files) - 1; i >= 0; i-- {
		if olds[i] == "" {
			errs = append(errs, os.Remove(files[i].Path))
			continue
		}
		if err := os.Rename(olds[i], files[i].Path); err != nil {
			errs = append(errs, fmt.Errorf("put back %s: %w", files[i].Path, err))
		}
	}
	return errors.Join(errs...)
}

// syncDirs fsyncs each directory that holds one of files, once.
func syncDirs(files []File) error {
	var errs []error
	synced := map[string]bool{}
	for _, f := range files {
		if d := filepath.Dir(f.Path); !synced[d] {
			synced[d] = true
			errs = append(errs, SyncDir(d))
		}
	}
	return errors.Join(errs...)
}

// WriteFrom is WriteFile for data too large to hold in memory: write
// streams it into the temporary file, and check, given that file's name
// once it is complete and fsynced, may refuse it; only then is it renamed
// over path. On any error path is left as it was.
func WriteFrom(path string, mode os.FileMode, write func(io.Writer) error, check func(tmp string) error) error {
	tmp, err := stageFrom(path, mode, write)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if check != nil {
		if err := check(tmp); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

func writeData(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// stageFrom writes a new temporary file beside path, with mode from the
// start and the content write gives it, and fsyncs it. It returns the
// temporary file's name.
func stageFrom(path string, mode os.FileMode, write func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	err = f.Chmod(mode)
	if err == nil {
		err = write(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return f.Name(), nil
}

// syncDir makes the renames in dir durable: without it a crash can bring
// back the old name (or, for a set, some old names and some new).
// SyncDir fsyncs dir, so that a file created or renamed in it survives a
// crash of the machine: a file's own fsync does not make its name durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
