package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// OfflineRequester is who the audit log names for an admin command that
// worked on the store with serve stopped, as store.Token.CreatedBy does.
const OfflineRequester = "store"

// OfflineAuditPath is where the admin commands that change the store with
// serve stopped write their audit lines, beside the store: serve logs them
// at its next start (ReplayOfflineAudit), so that every decision reaches
// the one audit log, late rather than never.
func OfflineAuditPath(storeDir string) string {
	return filepath.Join(storeDir, "offline-audit.jsonl")
}

// OfflineAudit is the audit log of one offline admin command: Log writes
// the same JSON lines serve writes, appended to OfflineAuditPath.
type OfflineAudit struct {
	Log *slog.Logger
	f   *appendFile
}

// OpenOfflineAudit opens storeDir's offline audit file for appending.
func OpenOfflineAudit(storeDir string) (*OfflineAudit, error) {
	f, err := openAppend(OfflineAuditPath(storeDir), storeDir)
	if err != nil {
		return nil, fmt.Errorf("offline audit log: %w", err)
	}
	return &OfflineAudit{Log: slog.New(slog.NewJSONHandler(f, nil)), f: f}, nil
}

// Close flushes the lines written to disk and closes the file (which, if
// this command made it, takes the store directory's owner: serve must
// empty it).
func (o *OfflineAudit) Close() error {
	if err := o.f.Close(); err != nil {
		return fmt.Errorf("offline audit log: %w", err)
	}
	return nil
}

// ReplayOfflineAudit logs, at start, every line the offline admin commands
// wrote since the last start through log, as audit lines of its own with
// the time each was made ("offline_at"), then empties the file. A line that
// does not parse (cut by a crash) is logged as a warning with its text. A
// crash between the two logs the lines again at the next start: twice,
// rather than never.
func ReplayOfflineAudit(storeDir string, log *slog.Logger) {
	path := OfflineAuditPath(storeDir)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		log.Warn("offline audit log not read", "path", path, "err", err)
		return
	}
	err = readLines(f, func(_ int, line []byte) {
		attrs, ok := auditAttrs(line)
		if !ok {
			log.Warn("offline audit log: line not parsed", "line", string(line[:min(len(line), 512)]), "bytes", len(line))
			return
		}
		log.LogAttrs(context.Background(), slog.LevelInfo, "audit", attrs...)
	})
	f.Close()
	if err != nil {
		log.Warn("offline audit log not read to its end; kept", "path", path, "err", err)
		return
	}
	if err := os.Truncate(path, 0); err != nil {
		log.Warn("offline audit log not emptied: its lines will be logged again at the next start", "path", path, "err", err)
	}
}

// auditAttrs reads one line an OfflineAudit wrote back into the attributes
// of an audit line, in their order: its time becomes "offline_at", its
// level and message are serve's own.
func auditAttrs(line []byte) ([]slog.Attr, bool) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var attrs []slog.Attr
	var isAudit bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		switch key {
		case "time":
			attrs = append(attrs, slog.Any("offline_at", v))
		case "level":
		case "msg":
			isAudit = string(v) == `"audit"`
		default:
			attrs = append(attrs, slog.Any(key, v))
		}
	}
	return attrs, isAudit
}
