// Package respond writes JSON answers for the REST API and the ACME
// server alike.
package respond

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// JSON answers with v encoded as JSON under contentType. The body is
// encoded before the header goes out, so it leaves with a Content-Length in
// one write: net/http sends any body over 2 KB whose length it does not
// know in chunks, and an issuance with its chain is about 3 KB.
func JSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "cannot encode the response", http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
