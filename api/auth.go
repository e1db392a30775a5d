package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/postflight/postflight"
)

// Authentication and authorization errors. Authenticate wraps them with the
// reason; test with errors.Is.
var (
	// ErrUnauthenticated: no bearer token, a malformed Authorization header,
	// or a token that is not in the auth file. The API answers 401.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the token is valid but lacks the scope or the account.
	// The API answers 403.
	ErrForbidden = errors.New("forbidden")
)

// Scope is a permission a token grants. Scopes are independent: admin does
// not imply read. The routes need:
//
//	GET  …/messages, …/messages/{sid}, …/retention   read
//	PATCH …/messages/{sid}                            write
//	DELETE …/messages/{sid}                           delete
//	PUT  …/retention                                  admin
type Scope string

const (
	ScopeRead   Scope = "read"
	ScopeWrite  Scope = "write"
	ScopeDelete Scope = "delete"
	ScopeAdmin  Scope = "admin"
)

// allScopes lists the known scopes; a scopeSet bit is the index here.
var allScopes = [...]Scope{ScopeRead, ScopeWrite, ScopeDelete, ScopeAdmin}

type scopeSet uint8

func scopeBit(s Scope) (scopeSet, bool) {
	i := slices.Index(allScopes[:], s)
	if i < 0 {
		return 0, false
	}
	return 1 << i, true
}

// AnyAccount in a token's accounts grants every account.
const AnyAccount = "*"

// Principal is the authenticated caller: the token entry that matched. The
// zero Principal allows nothing.
type Principal struct {
	// Name is the token's name from the auth file, for logs and metrics.
	Name string

	scopes      scopeSet
	allAccounts bool
	accounts    []string // sorted; shared with the Tokens it came from, read-only
}

// HasScope reports whether the principal holds scope.
func (p Principal) HasScope(scope Scope) bool {
	bit, ok := scopeBit(scope)
	return ok && p.scopes&bit != 0
}

// HasAccount reports whether the principal may act on account.
func (p Principal) HasAccount(account string) bool {
	if p.allAccounts {
		return true
	}
	_, found := slices.BinarySearch(p.accounts, account)
	return found
}

// Tokens is a validated auth file: the set of accepted bearer tokens, by the
// SHA-256 of each. It is immutable once built and safe for concurrent use.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	hash      [sha256.Size]byte
	principal Principal
}

// Len returns the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Names returns the token names in file order (for logging a reload).
func (t *Tokens) Names() []string {
	if t == nil {
		return nil
	}
	names := make([]string, len(t.entries))
	for i, e := range t.entries {
		names[i] = e.principal.Name
	}
	return names
}

// authFile is the JSON form of the --auth-file (DESIGN.md §3).
type authFile struct {
	Tokens []authFileToken `json:"tokens"`
}

type authFileToken struct {
	Name     string   `json:"name"`
	SHA256   string   `json:"sha256"`
	Accounts []string `json:"accounts"`
	Scopes   []Scope  `json:"scopes"`
}

// maxAuthFileSize bounds what LoadTokens reads.
const maxAuthFileSize = 16 << 20

// LoadTokens reads and validates the auth file at path (see ParseTokens).
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAuthFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	if len(data) > maxAuthFileSize {
		return nil, fmt.Errorf("auth file %s: larger than %d bytes", path, maxAuthFileSize)
	}
	t, err := ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	return t, nil
}

// ParseTokens parses and validates an auth file's contents:
//
//	{"tokens": [{"name": "billing", "sha256": "<64 hex digits>",
//	             "accounts": ["*"], "scopes": ["read", "write", "delete", "admin"]}]}
//
// Unknown fields are errors (a misspelt "scope" must not grant nothing
// silently). There must be at least one token; each needs a unique non-empty
// name, a unique sha256 of 64 hex digits (either case), at least one account
// ("*" or an account SID) and at least one known scope. Every problem found
// is reported, joined, each naming the token by index and name.
func ParseTokens(data []byte) (*Tokens, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var file authFile
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if dec.More() {
		return nil, errors.New("parse: data after the top-level JSON object")
	}
	if len(file.Tokens) == 0 {
		return nil, errors.New(`"tokens" is missing or empty: at least one token is required`)
	}
	var errs []error
	names := make(map[string]int, len(file.Tokens))
	hashes := make(map[[sha256.Size]byte]int, len(file.Tokens))
	t := &Tokens{entries: make([]tokenEntry, 0, len(file.Tokens))}
	for i, ft := range file.Tokens {
		e, entryErrs := parseToken(ft)
		where := fmt.Sprintf("tokens[%d] %q", i, ft.Name)
		if ft.Name != "" {
			if j, dup := names[ft.Name]; dup {
				entryErrs = append(entryErrs, fmt.Errorf("name: same as tokens[%d]", j))
			} else {
				names[ft.Name] = i
			}
		}
		if len(entryErrs) == 0 {
			if j, dup := hashes[e.hash]; dup {
				entryErrs = append(entryErrs, fmt.Errorf("sha256: same as tokens[%d]", j))
			} else {
				hashes[e.hash] = i
			}
		}
		for _, err := range entryErrs {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		t.entries = append(t.entries, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func parseToken(ft authFileToken) (tokenEntry, []error) {
	var errs []error
	e := tokenEntry{principal: Principal{Name: ft.Name}}
	if strings.TrimSpace(ft.Name) == "" {
		errs = append(errs, errors.New("name: empty"))
	}
	if len(ft.SHA256) != hex.EncodedLen(sha256.Size) {
		errs = append(errs, fmt.Errorf("sha256: want %d hex digits, got %d characters",
			hex.EncodedLen(sha256.Size), len(ft.SHA256)))
	} else if _, err := hex.Decode(e.hash[:], []byte(ft.SHA256)); err != nil {
		errs = append(errs, fmt.Errorf("sha256: want %d hex digits: %w", hex.EncodedLen(sha256.Size), err))
	}
	if len(ft.Accounts) == 0 {
		errs = append(errs, errors.New(`accounts: empty; list account SIDs or "*"`))
	}
	for _, a := range ft.Accounts {
		switch {
		case a == AnyAccount:
			e.principal.allAccounts = true
		case postflight.ValidAccountSID(a):
			e.principal.accounts = append(e.principal.accounts, a)
		default:
			errs = append(errs, fmt.Errorf(`accounts: %.40q is neither "*" nor AC and 32 lowercase hex digits`, a))
		}
	}
	slices.Sort(e.principal.accounts)
	e.principal.accounts = slices.Compact(e.principal.accounts)
	if e.principal.allAccounts {
		e.principal.accounts = nil
	}
	if len(ft.Scopes) == 0 {
		errs = append(errs, errors.New("scopes: empty"))
	}
	for _, s := range ft.Scopes {
		bit, ok := scopeBit(s)
		if !ok {
			errs = append(errs, fmt.Errorf("scopes: unknown scope %.40q; known: read, write, delete, admin", s))
		}
		e.principal.scopes |= bit
	}
	return e, errs
}

// lookup returns the principal whose hash equals sha256(token). It compares
// the hash with every entry in constant time and without stopping at a
// match, so the time taken depends only on the number of entries.
func (t *Tokens) lookup(token string) (Principal, bool) {
	if t == nil {
		return Principal{}, false
	}
	sum := sha256.Sum256([]byte(token))
	match := 0 // index+1 of the matching entry; hashes are unique
	for i := range t.entries {
		eq := subtle.ConstantTimeCompare(sum[:], t.entries[i].hash[:])
		match = subtle.ConstantTimeSelect(eq, i+1, match)
	}
	if match == 0 {
		return Principal{}, false
	}
	return t.entries[match-1].principal, true
}

// HashToken returns the hex SHA-256 of token: the "sha256" value the auth
// file holds for it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Authenticator checks bearer tokens against the current Tokens. Reload swaps
// them atomically: requests in flight finish with the set they started with.
// Safe for concurrent use; Reload calls are serialized.
type Authenticator struct {
	path   string
	mu     sync.Mutex // serializes Reload
	tokens atomic.Pointer[Tokens]
}

// NewAuthenticator loads the auth file at path; Reload re-reads it.
func NewAuthenticator(path string) (*Authenticator, error) {
	t, err := LoadTokens(path)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{path: path}
	a.tokens.Store(t)
	return a, nil
}

// Reload re-reads the auth file (cmd calls it on SIGHUP). On success the new
// tokens apply to every request that authenticates afterwards; on failure the
// old tokens stay in force and the error says why.
func (a *Authenticator) Reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.path == "" {
		return errors.New("reload auth: no auth file")
	}
	t, err := LoadTokens(a.path)
	if err != nil {
		return fmt.Errorf("reload auth: %w", err)
	}
	a.tokens.Store(t)
	return nil
}

// Tokens returns the tokens in force.
func (a *Authenticator) Tokens() *Tokens { return a.tokens.Load() }

// Authenticate returns the principal of the request's bearer token. The error
// wraps ErrUnauthenticated when the Authorization header is missing,
// repeated, not a Bearer credential, or the token is unknown.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return Principal{}, fmt.Errorf("%w: no Authorization header", ErrUnauthenticated)
	case 1:
	default:
		return Principal{}, fmt.Errorf("%w: more than one Authorization header", ErrUnauthenticated)
	}
	token, ok := parseAuthorization(values[0])
	if !ok {
		return Principal{}, fmt.Errorf("%w: Authorization is not a Bearer token", ErrUnauthenticated)
	}
	p, ok := a.tokens.Load().lookup(token)
	if !ok {
		return Principal{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	return p, nil
}

// maxTokenLen bounds the bearer tokens parseAuthorization accepts.
const maxTokenLen = 4096

// parseAuthorization extracts the token from an Authorization header value
// "Bearer <token>" (RFC 6750 §2.1): the scheme is case-insensitive, one or
// more spaces follow it, and the token is b64token syntax
// (1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="), at most
// maxTokenLen bytes. Surrounding spaces and tabs are ignored.
func parseAuthorization(h string) (token string, ok bool) {
	h = strings.Trim(h, " \t")
	const scheme = "bearer"
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) || h[len(scheme)] != ' ' {
		return "", false
	}
	token = strings.TrimLeft(h[len(scheme):], " ")
	if len(token) == 0 || len(token) > maxTokenLen {
		return "", false
	}
	i := 0
	for i < len(token) && isB64TokenChar(token[i]) {
		i++
	}
	if i == 0 {
		return "", false
	}
	for i < len(token) && token[i] == '=' {
		i++
	}
	if i != len(token) {
		return "", false
	}
	return token, true
}

func isB64TokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal requireScope stored in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// requireScope guards a handler of a route with an {account_sid} path value.
// It checks, in this order, and answers the first failure as a problem:
//
//  1. 401 (with WWW-Authenticate): no, malformed or unknown bearer token.
//     Nothing about the request is examined before the caller is known.
//  2. 400: the account_sid path value is not AC and 32 lowercase hex digits
//     (invalid_params names account_sid). The format is public, so this
//     tells an authenticated caller nothing it could not know, and it is
//     more useful than a 403 for a token that holds every account.
//  3. 403: the token lacks scope, or lacks the account.
//
// Then next runs with the Principal in its request context (PrincipalFrom).
func (a *Authenticator) requireScope(scope Scope, next http.HandlerFunc) http.HandlerFunc {
	if _, ok := scopeBit(scope); !ok {
		panic(fmt.Sprintf("api: requireScope: unknown scope %q", scope))
	}
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			writeProblem(w, unauthorized())
			return
		}
		account := r.PathValue("account_sid")
		if !postflight.ValidAccountSID(account) {
			writeProblem(w, badRequest("account_sid is not a valid account SID",
				InvalidParam{Name: "account_sid", Reason: "want AC and 32 lowercase hex digits"}))
			return
		}
		if !p.HasScope(scope) {
			writeProblem(w, forbidden(fmt.Sprintf("the token lacks the %q scope", scope)))
			return
		}
		if !p.HasAccount(account) {
			writeProblem(w, forbidden("the token is not granted this account"))
			return
		}
		next(w, r.WithContext(WithPrincipal(r.Context(), p)))
	}
}

// DevTokenName is the name of the token WriteDevAuthFile creates.
const DevTokenName = "dev"

// WriteDevAuthFile creates a fresh admin token (32 random bytes, base64url,
// prefixed "pf_") and writes an auth file at path holding only its hash,
// granting every account and every scope, with mode 0600. It replaces any
// file at path atomically (temporary file and rename), so a concurrent Reload
// sees the old or the new file, never half of one. It returns the token,
// which exists nowhere else: `postflight dev` prints it.
func WriteDevAuthFile(path string) (token string, err error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("dev auth file: %w", err)
	}
	token = "pf_" + base64.RawURLEncoding.EncodeToString(raw[:])
	file := authFile{Tokens: []authFileToken{{
		Name:     DevTokenName,
		SHA256:   HashToken(token),
		Accounts: []string{AnyAccount},
		Scopes:   allScopes[:],
	}}}
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return "", fmt.Errorf("dev auth file: %w", err)
	}
	data = append(data, '\n')
	if err := writeFileAtomic(path, data); err != nil {
		return "", fmt.Errorf("dev auth file: %w", err)
	}
	return token, nil
}

// writeFileAtomic writes data to a 0600 temporary file beside path, syncs
// it and renames it over path.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
