package keydesign

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"
)

// Cursor is where a list resumes: strictly after index sort key After, for the
// query whose Fingerprint it carries. Because index sort keys are unique and
// totally ordered, one key resumes every shard of every epoch at once.
type Cursor struct {
	Fingerprint uint64    // of the account and query; a token for another query is refused
	After       string    // the last index sort key returned
	Issued      time.Time // millisecond precision; tokens expire after a maximum age, and
	// a list's default range is resolved against it so every page agrees
}

// Errors from DecodeToken. All mean "400: bad page_token".
var (
	ErrTokenMalformed = errors.New("malformed page token")
	ErrTokenTampered  = errors.New("page token signature mismatch")
	ErrTokenMismatch  = errors.New("page token belongs to another query")
	ErrTokenExpired   = errors.New("page token expired")
)

const (
	tokenVersion = 1
	macLen       = 16
	// version | fingerprint | millis | sid prefix | sid hex (16 bytes) | issued
	tokenBody = 1 + 8 + 8 + 1 + 16 + 8
)

// Fingerprint hashes the parts of a query a page token is bound to.
func Fingerprint(parts ...string) uint64 {
	h := sha256.New()
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// EncodeToken returns the opaque, signed, URL-safe form of c (78 characters).
func EncodeToken(key []byte, c Cursor) (string, error) {
	ts, sid, err := ParseIndexSK(c.After)
	if err != nil {
		return "", err
	}
	var prefix byte
	switch sid[:2] {
	case "SM":
		prefix = 0
	case "MM":
		prefix = 1
	default:
		return "", ErrBadIndexSK
	}
	b := make([]byte, tokenBody, tokenBody+macLen)
	b[0] = tokenVersion
	binary.BigEndian.PutUint64(b[1:], c.Fingerprint)
	binary.BigEndian.PutUint64(b[9:], uint64(ts.UnixMilli()))
	b[17] = prefix
	if _, err := hex.Decode(b[18:34], []byte(sid[2:])); err != nil {
		return "", ErrBadIndexSK
	}
	binary.BigEndian.PutUint64(b[34:], uint64(c.Issued.UnixMilli()))
	b = append(b, mac(key, b)...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// DecodeToken verifies and decodes a token produced by EncodeToken for the
// query with fingerprint fp, refusing one older than maxAge at now.
func DecodeToken(key []byte, s string, fp uint64, now time.Time, maxAge time.Duration) (Cursor, error) {
	if len(s) > base64.RawURLEncoding.EncodedLen(tokenBody+macLen) {
		return Cursor{}, ErrTokenMalformed
	}
	// Strict: a token has exactly one spelling (no stray trailing bits).
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tokenBody+macLen || b[0] != tokenVersion {
		return Cursor{}, ErrTokenMalformed
	}
	if subtle.ConstantTimeCompare(mac(key, b[:tokenBody]), b[tokenBody:]) != 1 {
		return Cursor{}, ErrTokenTampered
	}
	if binary.BigEndian.Uint64(b[1:]) != fp {
		return Cursor{}, ErrTokenMismatch
	}
	issued := time.UnixMilli(int64(binary.BigEndian.Uint64(b[34:]))).UTC()
	if now.Sub(issued) > maxAge || issued.After(now.Add(time.Minute)) {
		return Cursor{}, ErrTokenExpired
	}
	ms := int64(binary.BigEndian.Uint64(b[9:]))
	if ms < 0 || ms > 9_999_999_999_999 || b[17] > 1 {
		return Cursor{}, ErrTokenMalformed
	}
	prefix := "SM"
	if b[17] == 1 {
		prefix = "MM"
	}
	sid := prefix + hex.EncodeToString(b[18:34])
	return Cursor{Fingerprint: fp, After: IndexSK(time.UnixMilli(ms), sid), Issued: issued}, nil
}

func mac(key, b []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return m.Sum(nil)[:macLen]
}
