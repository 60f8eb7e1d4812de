package api

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// errorLog is net/http's ErrorLog for pkid's listeners. Its lines go to
// the server's log at Warn, except a TLS handshake that ended because the
// peer hung up before it began (a load balancer's TCP health check, a port
// scan): that is Debug, or a probe every few seconds would fill the log.
// A handshake a client refused (it does not trust pkid's certificate, or
// speaks no TLS 1.2) stays a warning: it is how a misconfigured client
// shows on the server.
func errorLog(l *slog.Logger) *log.Logger {
	return log.New(errorLogWriter{l}, "", 0)
}

type errorLogWriter struct{ log *slog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error from ") &&
		(strings.HasSuffix(msg, ": EOF") || strings.HasSuffix(msg, ": connection reset by peer")) {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, msg)
	return len(p), nil
}
