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
	var bad byte
	for i := 2; i < SIDLen; i++ {
		bad |= notLowerHex[s[i]] // no early exit: one branch, not 32
	}
	return bad == 0
}

// notLowerHex is 1 for every byte but 0-9 and a-f.
var notLowerHex = func() (t [256]byte) {
	for i := range t {
		t[i] = 1
	}
	for _, c := range "0123456789abcdef" {
		t[c] = 0
	}
	return t
}()
