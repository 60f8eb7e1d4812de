package testutil

import (
	"encoding/json"
	"testing"
)

// JSON is v marshalled, as a string for request bodies and answers a test
// serves; a value that cannot be marshalled fails the test.
func JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
