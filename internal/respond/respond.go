// Package respond writes JSON answers for the REST API and the ACME
// server alike.
package respond

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// bodies are reused answer buffers: an issuance answer is about 3 KB, and
// encoding it into a fresh slice, then growing that for the newline, cost
// more than the encoding at thousands of answers a second.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooled keeps the odd large answer (a long certificate listing) from
// pinning its buffer in the pool.
const maxPooled = 64 << 10

// JSON answers with v encoded as JSON under contentType. The body is
// encoded before the header goes out, so it leaves with a Content-Length in
// one write: net/http sends any body over 2 KB whose length it does not
// know in chunks, and an issuance with its chain is about 3 KB.
func JSON(w http.ResponseWriter, status int, contentType string, v any) {
	body := bodies.Get().(*bytes.Buffer)
	defer func() {
		if body.Cap() <= maxPooled {
			body.Reset()
			bodies.Put(body)
		}
	}()
	// Encode writes what json.Marshal would, then a newline.
	if err := json.NewEncoder(body).Encode(v); err != nil {
		http.Error(w, "cannot encode the response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(status)
	w.Write(body.Bytes())
}
