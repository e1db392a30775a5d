package postflight

// SIDLen is the length of every SID: a two-letter prefix and 32 lowercase hex
// digits.
const SIDLen = 34

// ValidAccountSID reports whether s is "AC" followed by 32 lowercase hex digits.
func ValidAccountSID(s string) bool { return validSID(s, "AC", "AC") }

// ValidMessageSID reports whether s is "SM" or "MM" followed by 32 lowercase
// hex digits.
func ValidMessageSID(s string) bool { return validSID(s, "SM", "MM") }

func validSID(s, p1, p2 string) bool {
	if len(s) != SIDLen || (s[:2] != p1 && s[:2] != p2) {
		return false
	}
	for i := 2; i < SIDLen; i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
