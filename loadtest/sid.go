package loadtest

import (
	"encoding/binary"
	"encoding/hex"
)

// AccountSID returns the synthetic account SID of a Zipf rank: "AC" and 32
// lowercase hex digits, the same for a rank in every process and run, so
// that shard processes and the verifier agree on who sent what.
func AccountSID(rank int) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], splitmix64(uint64(rank)*2+1))
	binary.BigEndian.PutUint64(b[8:], splitmix64(uint64(rank)*2+2))
	return sid("AC", b)
}

func sid(prefix string, b [16]byte) string {
	var out [34]byte
	copy(out[:], prefix)
	hex.Encode(out[2:], b[:])
	return string(out[:])
}

// splitmix64 is a bijective 64-bit mixer (Steele, Lea, Flood 2014).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
