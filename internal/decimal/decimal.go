// Package decimal reads the numbers that clients put in paths, queries and
// headers (video ids, Last-Event-IDs, cursors) in their one canonical form,
// so that one number has one spelling: "+1", "01" and " 1" name nothing.
package decimal

// Parse reads s as a non-negative integer written in decimal digits, with no
// sign, no leading zero (other than "0" itself) and no other character, that
// fits an int64. It reports false for anything else.
func Parse(s string) (int64, bool) {
	if s == "" || len(s) > 19 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}
