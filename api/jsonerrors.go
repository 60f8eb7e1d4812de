package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// jsonProblem says what is wrong with a request body in the API's terms,
// for the detail of a 400: the field and the kind of value it takes, or
// where the syntax broke. encoding/json's own words name Go types ("Go
// struct field issueBody.dns_names of type []string"), which a client
// cannot act on. v is what the body was decoded into.
func jsonProblem(err error, v any) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return fmt.Sprintf("want a JSON object, not %s", jsonKind(te.Value))
		}
		return fmt.Sprintf("%s: want %s, not %s", field, goKind(te.Type), jsonKind(te.Value))
	case errors.As(err, &se):
		return fmt.Sprintf("not JSON: %s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	case errors.Is(err, io.EOF):
		return "empty; want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends before it is complete"
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("unknown field %s; this request takes %s", name, strings.Join(jsonFields(v), ", "))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names a JSON value as encoding/json reports it ("string",
// "number", "number -1", "array", "object", "bool").
func jsonKind(v string) string {
	kind, rest, _ := strings.Cut(v, " ")
	switch kind {
	case "array", "object":
		return "an " + kind
	case "bool":
		return "true or false"
	case "number":
		if rest != "" {
			return "the number " + rest
		}
		return "a number"
	}
	return "a " + kind
}

// goKind names the JSON a Go type is read from.
func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(goKind(t.Elem()), "a "), "an ") + "s"
	case reflect.Pointer:
		return goKind(t.Elem())
	}
	return "an object"
}

// jsonFields lists the JSON names of the fields of the struct v points to.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, `"`+name+`"`)
	}
	return out
}
