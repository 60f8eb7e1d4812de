package respond

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestJSON(t *testing.T) {
	big := strings.Repeat("x", 3000) // past net/http's 2 KB chunking threshold
	cases := []struct {
		name   string
		v      any
		status int
		body   string
	}{
		{"ok/small", map[string]int{"a": 1}, 201, "{\"a\":1}\n"},
		{"ok/large", map[string]string{"pem": big}, 200, `{"pem":"` + big + "\"}\n"},
		{"ok/html escaped as encoding/json does", "<&>", 200, "\"\\u003c\\u0026\\u003e\"\n"},
		{"fail/cannot encode", func() {}, 500, "cannot encode the response\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			JSON(w, tc.status, "application/problem+json", tc.v)
			if w.Code != tc.status || w.Body.String() != tc.body {
				t.Fatalf("%d %q", w.Code, w.Body.String())
			}
			if tc.status == 500 {
				return
			}
			if w.Header().Get("Content-Type") != "application/problem+json" || w.Header().Get("Content-Length") != strconv.Itoa(len(tc.body)) {
				t.Fatalf("headers %v", w.Header())
			}
		})
	}
	// Through a real server: the large body is not chunked.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		JSON(w, 200, "application/json", map[string]string{"pem": big})
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.TransferEncoding) != 0 || resp.ContentLength != int64(len(big)+11) {
		t.Fatalf("Transfer-Encoding %v, Content-Length %d", resp.TransferEncoding, resp.ContentLength)
	}
}
