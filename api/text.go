package api

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// textProblem says what keeps s from being stored, or "" when nothing does.
// Every string a request brings to the database goes through it, so that
// both databases take the same strings: PostgreSQL refuses NUL (U+0000) and
// invalid UTF-8 in text, which SQLite would keep. maxChars bounds the
// length in characters (code points).
func textProblem(s string, maxChars int) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL (U+0000)"
	case utf8.RuneCountInString(s) > maxChars:
		return "must be at most " + strconv.Itoa(maxChars) + " characters"
	}
	return ""
}
