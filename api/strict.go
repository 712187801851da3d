package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// Strict decoding. encoding/json matches keys case-insensitively and lets
// the last of two equal keys win, so `{"Prompt": …}` and a body whose
// second "status" overrides its first would pass unnoticed. Bodies here are
// read strictly instead: every key of the top-level object must be one of
// the fields the request takes, spelt exactly, and no object anywhere may
// repeat a key. Unknown fields are refused too, so that a misspelt optional
// field ("staus") is an error rather than a silent default.

// fieldNames caches, per request type, the JSON names its fields take.
var fieldNames sync.Map // reflect.Type → map[string]bool

// namesOf returns the JSON names of the fields of the struct dst points to.
func namesOf(dst any) map[string]bool {
	t := reflect.TypeOf(dst).Elem()
	if names, ok := fieldNames.Load(t); ok {
		return names.(map[string]bool)
	}
	names := make(map[string]bool)
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	fieldNames.Store(t, names)
	return names
}

// keyProblems checks the keys of body, valid JSON, against names: what is
// wrong, by top-level field, or nil. Bodies that are not objects are left
// to json.Unmarshal to refuse.
func keyProblems(body []byte, names map[string]bool) map[string]string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return nil
	}
	problems := make(map[string]string)
	eachMember(dec, func(key string, again bool, nested string) {
		switch {
		case nested != "":
			problems[key] = "has the key " + strconv.Quote(nested) + " more than once"
		case again:
			problems[key] = "appears more than once"
		case !names[key]:
			problems[key] = "is not a field of this request" + suggestion(key, names)
		}
	})
	if len(problems) == 0 {
		return nil
	}
	return problems
}

// suggestion names the field that key differs from only in case.
func suggestion(key string, names map[string]bool) string {
	for name := range names {
		if strings.EqualFold(name, key) {
			return "; did you mean " + strconv.Quote(name) + "?"
		}
	}
	return ""
}

// eachMember reads the members of an object whose opening brace dec has
// read, through its closing brace, telling member each key, whether the
// object had it before, and a key that some object within its value
// repeats ("" if none).
func eachMember(dec *json.Decoder, member func(key string, again bool, nested string)) {
	seen := make(map[string]bool)
	for dec.More() {
		tok, _ := dec.Token()
		key := tok.(string)
		member(key, seen[key], repeatedKey(dec))
		seen[key] = true
	}
	dec.Token() // the closing brace
}

// repeatedKey reads the next value from dec, which holds valid JSON, and
// returns a key that some object within it repeats, or "".
func repeatedKey(dec *json.Decoder) string {
	found := ""
	note := func(key string) {
		if found == "" {
			found = key
		}
	}
	switch tok, _ := dec.Token(); tok {
	case json.Delim('{'):
		eachMember(dec, func(key string, again bool, nested string) {
			if again {
				note(key)
			}
			if nested != "" {
				note(nested)
			}
		})
	case json.Delim('['):
		for dec.More() {
			if dup := repeatedKey(dec); dup != "" {
				note(dup)
			}
		}
		dec.Token() // the closing bracket
	}
	return found
}
