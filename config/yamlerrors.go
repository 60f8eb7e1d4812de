package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	unknownRe = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)
	typeRe    = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$") // not raw: the pattern holds backquotes
	daysRe    = regexp.MustCompile(`^(\d+)d$`)
	numberRe  = regexp.MustCompile(`^\d+$`)
)

// examples are what each of pkid.yaml's limits looks like written out.
var examples = map[string]string{
	"config.FailureLimit": "{failures: 10, per: 1h}",
	"config.OrderLimit":   "{orders: 300, per: 1h}",
	"config.AccountLimit": "{accounts: 100, per: 1h}",
	"policies.RateLimit":  "{certificates: 100, per: 1h}",
}

// explain rewrites the decoder's errors in pkid.yaml's terms, as the
// checks after decoding write theirs: the key's path, then what is wrong
// with what was written and what would do ("roles.default.max_ttl: "7d"
// is not a duration ..."), and the line. The decoder itself says only a
// line and Go types ("cannot unmarshal !!str `7d` into time.Duration"),
// which leaves an operator to count lines and guess the type. An error it
// cannot place is passed on as it is.
func explain(raw []byte, err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	var doc yaml.Node
	if yaml.Unmarshal(raw, &doc) != nil {
		doc = yaml.Node{}
	}
	out := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		out[i] = explainOne(&doc, e)
	}
	return strings.Join(out, "\n")
}

func explainOne(doc *yaml.Node, e string) string {
	if m := unknownRe.FindStringSubmatch(e); m != nil {
		line, _ := strconv.Atoi(m[1])
		if path, ok := findKey(doc, line, m[2]); ok && path != "" {
			return fmt.Sprintf("%s: unknown key %s (line %d)", path, m[2], line)
		}
		return fmt.Sprintf("unknown key %s (line %d)", m[2], line)
	}
	m := typeRe.FindStringSubmatch(e)
	if m == nil {
		return e
	}
	line, _ := strconv.Atoi(m[1])
	tag, value, into := m[2], m[3], m[4]
	path, n := findValue(doc, line, tag, value)
	if n == nil {
		return e
	}
	if n.Kind == yaml.ScalarNode {
		value = n.Value // the decoder cuts long ones short
	}
	return fmt.Sprintf("%s: %s (line %d)", path, wanted(tag, value, into), line)
}

// DurationAdvice says how to write value, which is not a Go duration, as
// one: days as hours ("7d" is 168h), a bare number with its unit, or the
// form in general. pkid.yaml's durations and the API's ttl are Go's, in
// h, m and s, and people coming from other CAs write days.
func DurationAdvice(value string) string {
	if d := daysRe.FindStringSubmatch(value); d != nil {
		if n, err := strconv.Atoi(d[1]); err == nil && n <= 1<<20 {
			return fmt.Sprintf("write days as hours (%dh)", 24*n)
		}
	}
	if numberRe.MatchString(value) {
		return fmt.Sprintf("give it a unit, e.g. %ss", value)
	}
	return "write one like 24h, 90m or 30s"
}

// wanted says what a value of tag (and text value, for a scalar) is not,
// given the Go type into which it would not decode.
func wanted(tag, value, into string) string {
	written := fmt.Sprintf("%q", value)
	if value == "" && tag != "str" {
		written = map[string]string{"map": "a mapping", "seq": "a list", "null": "nothing"}[tag]
		if written == "" {
			written = "!!" + tag
		}
	}
	switch {
	case into == "time.Duration":
		return fmt.Sprintf("%s is not a duration: %s", written, DurationAdvice(value))
	case into == "bool":
		return fmt.Sprintf("%s is not true or false", written)
	case strings.HasPrefix(into, "int") || strings.HasPrefix(into, "uint"):
		return fmt.Sprintf("%s is not a whole number", written)
	case into == "string":
		return fmt.Sprintf("want a single value, not %s", written)
	case strings.HasPrefix(into, "[]"):
		if tag == "str" {
			return fmt.Sprintf("want a list, e.g. [%s], not %s", value, written)
		}
		return fmt.Sprintf("want a list, not %s", written)
	case examples[strings.TrimPrefix(into, "*")] != "":
		return fmt.Sprintf("want %s, not %s", examples[strings.TrimPrefix(into, "*")], written)
	default: // a map or one of pkid's sections
		return fmt.Sprintf("want a mapping ({key: value, ...}), not %s", written)
	}
}

// findKey is the path of the mapping that holds key name on line.
func findKey(doc *yaml.Node, line int, name string) (string, bool) {
	var found string
	ok := walk(doc, "", func(parent, _ string, k, _ *yaml.Node) bool {
		if k != nil && k.Line == line && k.Value == name {
			found = parent
			return true
		}
		return false
	})
	return found, ok
}

// findValue is the path and node of the first value on line that is a
// tag: a scalar written as value, which the decoder's message cuts to
// its first 7 characters and "..." when longer than 10.
func findValue(doc *yaml.Node, line int, tag, value string) (string, *yaml.Node) {
	var path string
	var node *yaml.Node
	walk(doc, "", func(_, p string, _, v *yaml.Node) bool {
		if v.Line != line || v.ShortTag() != "!!"+tag {
			return false
		}
		if cut, ok := strings.CutSuffix(value, "..."); ok && len(v.Value) > 10 {
			if !strings.HasPrefix(v.Value, cut) {
				return false
			}
		} else if v.Kind == yaml.ScalarNode && v.Value != value {
			return false
		}
		path, node = p, v
		return true
	})
	return path, node
}

// walk calls visit, depth first, with each value below n: the path of
// the node holding it, its own path, and its key (nil in a list) and
// value, until visit returns true, which walk then returns.
func walk(n *yaml.Node, path string, visit func(parent, path string, key, value *yaml.Node) bool) bool {
	for i, v := range n.Content {
		var k *yaml.Node
		p := path
		switch n.Kind {
		case yaml.MappingNode:
			if i%2 == 0 {
				continue // a key: visited with its value
			}
			k = n.Content[i-1]
			p = join(path, k.Value)
		case yaml.SequenceNode:
			p = fmt.Sprintf("%s[%d]", path, i)
		case yaml.DocumentNode:
			if walk(v, path, visit) {
				return true
			}
			continue
		default:
			continue
		}
		if visit(path, p, k, v) || walk(v, p, visit) {
			return true
		}
	}
	return false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
