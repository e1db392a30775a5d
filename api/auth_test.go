package api

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	acc1 = "AC00000000000000000000000000000001"
	acc2 = "AC00000000000000000000000000000002"
	sid1 = "SM0123456789abcdef0123456789abcdef"

	tokBilling = "tok-billing"
	tokSupport = "tok-support"
	tokWriter  = "tok.writer~/+=="
)

// testTokens: billing holds everything; support reads acc1; writer writes
// and deletes acc1 and acc2.
func testTokens() authFile {
	return authFile{Tokens: []authFileToken{
		{Name: "billing", SHA256: HashToken(tokBilling), Accounts: []string{"*"},
			Scopes: []Scope{ScopeRead, ScopeWrite, ScopeDelete, ScopeAdmin}},
		{Name: "support", SHA256: HashToken(tokSupport), Accounts: []string{acc1}, Scopes: []Scope{ScopeRead}},
		{Name: "writer", SHA256: strings.ToUpper(HashToken(tokWriter)), Accounts: []string{acc2, acc1, acc1},
			Scopes: []Scope{ScopeWrite, ScopeDelete}},
	}}
}

func writeAuthFile(t *testing.T, path string, f authFile) {
	t.Helper()
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func newTestAuthenticator(t *testing.T) (*Authenticator, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.json")
	writeAuthFile(t, path, testTokens())
	a, err := NewAuthenticator(path)
	if err != nil {
		t.Fatal(err)
	}
	return a, path
}

// authMux mounts requireScope the way the handlers do, with a handler that
// echoes the principal's name.
func authMux(a *Authenticator) *http.ServeMux {
	echo := func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(p.Name))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/accounts/{account_sid}/messages", a.requireScope(ScopeRead, echo))
	mux.HandleFunc("PATCH /v1/accounts/{account_sid}/messages/{sid}", a.requireScope(ScopeWrite, echo))
	mux.HandleFunc("DELETE /v1/accounts/{account_sid}/messages/{sid}", a.requireScope(ScopeDelete, echo))
	mux.HandleFunc("PUT /v1/accounts/{account_sid}/retention", a.requireScope(ScopeAdmin, echo))
	return mux
}

func TestRequireScope(t *testing.T) {
	a, _ := newTestAuthenticator(t)
	mux := authMux(a)
	list := func(acc string) string { return "/v1/accounts/" + acc + "/messages" }
	msg := func(acc string) string { return "/v1/accounts/" + acc + "/messages/" + sid1 }
	tests := []struct {
		name   string
		method string
		path   string
		auth   []string // Authorization header values
		status int
		who    string // principal name on success
		detail string // substring of the problem detail
	}{
		{name: "no header", method: "GET", path: list(acc1), status: 401},
		{name: "basic scheme", method: "GET", path: list(acc1), auth: []string{"Basic dG9rLWJpbGxpbmc6"}, status: 401},
		{name: "token without scheme", method: "GET", path: list(acc1), auth: []string{tokBilling}, status: 401},
		{name: "scheme without token", method: "GET", path: list(acc1), auth: []string{"Bearer"}, status: 401},
		{name: "scheme and space only", method: "GET", path: list(acc1), auth: []string{"Bearer "}, status: 401},
		{name: "unknown token", method: "GET", path: list(acc1), auth: []string{"Bearer nope"}, status: 401},
		{name: "token's hash as token", method: "GET", path: list(acc1), auth: []string{"Bearer " + HashToken(tokBilling)}, status: 401},
		{name: "token with a suffix", method: "GET", path: list(acc1), auth: []string{"Bearer " + tokBilling + "x"}, status: 401},
		{name: "two headers", method: "GET", path: list(acc1), auth: []string{"Bearer " + tokBilling, "Bearer " + tokBilling}, status: 401},
		{name: "billing", method: "GET", path: list(acc1), auth: []string{"Bearer " + tokBilling}, status: 200, who: "billing"},
		{name: "scheme is case-insensitive", method: "GET", path: list(acc1), auth: []string{"bEARER " + tokSupport}, status: 200, who: "support"},
		{name: "several spaces", method: "GET", path: list(acc1), auth: []string{"Bearer   " + tokSupport}, status: 200, who: "support"},
		{name: "token with b64 punctuation and padding", method: "PATCH", path: msg(acc2), auth: []string{"Bearer " + tokWriter}, status: 200, who: "writer"},
		{name: "wildcard account", method: "DELETE", path: msg(acc2), auth: []string{"Bearer " + tokBilling}, status: 200, who: "billing"},
		{name: "admin scope", method: "PUT", path: "/v1/accounts/" + acc2 + "/retention", auth: []string{"Bearer " + tokBilling}, status: 200, who: "billing"},
		{name: "right account wrong scope", method: "PATCH", path: msg(acc1), auth: []string{"Bearer " + tokSupport}, status: 403, detail: `"write" scope`},
		{name: "scopes do not imply each other", method: "GET", path: list(acc1), auth: []string{"Bearer " + tokWriter}, status: 403, detail: `"read" scope`},
		{name: "right scope wrong account", method: "GET", path: list(acc2), auth: []string{"Bearer " + tokSupport}, status: 403, detail: "account"},
		{name: "admin lacking", method: "PUT", path: "/v1/accounts/" + acc1 + "/retention", auth: []string{"Bearer " + tokWriter}, status: 403, detail: `"admin" scope`},
		// Order: 401 before 400 before 403.
		{name: "bad account, no token: 401", method: "GET", path: list("AC123"), status: 401},
		{name: "bad account, unknown token: 401", method: "GET", path: list("AC123"), auth: []string{"Bearer nope"}, status: 401},
		{name: "bad account, wildcard token: 400", method: "GET", path: list("AC123"), auth: []string{"Bearer " + tokBilling}, status: 400, detail: "account_sid"},
		{name: "bad account, token lacking it: 400", method: "GET", path: list("XX00000000000000000000000000000001"), auth: []string{"Bearer " + tokSupport}, status: 400},
		{name: "uppercase account: 400", method: "GET", path: list("AC0000000000000000000000000000000A"), auth: []string{"Bearer " + tokBilling}, status: 400},
		{name: "bad account, token lacking scope: 400", method: "PATCH", path: msg("AC1"), auth: []string{"Bearer " + tokSupport}, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			for _, v := range tt.auth {
				req.Header.Add("Authorization", v)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				if got := rec.Body.String(); got != tt.who {
					t.Errorf("principal %q, want %q", got, tt.who)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != ContentTypeProblem {
				t.Errorf("Content-Type %q", ct)
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.Status != tt.status || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("problem %+v, want status %d and detail containing %q", p, tt.status, tt.detail)
			}
			wa := rec.Header().Get("WWW-Authenticate")
			if (tt.status == 401) != strings.HasPrefix(wa, "Bearer") {
				t.Errorf("status %d with WWW-Authenticate %q", tt.status, wa)
			}
			if tt.status == 400 && (len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "account_sid") {
				t.Errorf("invalid_params %+v, want account_sid", p.InvalidParams)
			}
		})
	}
}

func TestAuthenticateErrors(t *testing.T) {
	a, _ := newTestAuthenticator(t)
	for _, h := range []string{"", "Basic x", "Bearer", "Bearer nope", "Bearer a b"} {
		req := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		_, err := a.Authenticate(req)
		if !errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrForbidden) {
			t.Errorf("Authorization %q: err %v, want ErrUnauthenticated", h, err)
		}
	}
}

func TestPrincipalAllows(t *testing.T) {
	tok, err := ParseTokens(mustJSON(t, testTokens()))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Principal{}
	for _, e := range tok.entries {
		byName[e.principal.Name] = e.principal
	}
	tests := []struct {
		who     string
		scope   Scope
		account string
		want    bool
	}{
		{"billing", ScopeRead, acc1, true},
		{"billing", ScopeAdmin, acc2, true},
		{"billing", ScopeAdmin, "AC99999999999999999999999999999999", true},
		{"billing", Scope("superuser"), acc1, false},
		{"support", ScopeRead, acc1, true},
		{"support", ScopeRead, acc2, false},
		{"support", ScopeWrite, acc1, false},
		{"support", ScopeRead, "*", false},
		{"writer", ScopeWrite, acc1, true},
		{"writer", ScopeDelete, acc2, true},
		{"writer", ScopeRead, acc2, false},
		{"writer", ScopeAdmin, acc1, false},
	}
	for _, tt := range tests {
		if got := byName[tt.who].Allows(tt.scope, tt.account); got != tt.want {
			t.Errorf("%s.Allows(%s, %s) = %v, want %v", tt.who, tt.scope, tt.account, got, tt.want)
		}
	}
	if (Principal{}).Allows(ScopeRead, acc1) {
		t.Error("the zero Principal allows something")
	}
}

func TestLookupEveryPosition(t *testing.T) {
	var f authFile
	for i := range 20 {
		tok := "tok" + strings.Repeat("x", i)
		f.Tokens = append(f.Tokens, authFileToken{Name: tok, SHA256: HashToken(tok), Accounts: []string{"*"}, Scopes: []Scope{ScopeRead}})
	}
	tokens, err := ParseTokens(mustJSON(t, f))
	if err != nil {
		t.Fatal(err)
	}
	for _, ft := range f.Tokens {
		p, ok := tokens.lookup(ft.Name)
		if !ok || p.Name != ft.Name {
			t.Errorf("lookup(%q) = %q, %v", ft.Name, p.Name, ok)
		}
	}
	if _, ok := tokens.lookup(""); ok {
		t.Error("empty token matched")
	}
	if _, ok := (*Tokens)(nil).lookup("tok"); ok {
		t.Error("nil Tokens matched")
	}
}

func TestReload(t *testing.T) {
	a, path := newTestAuthenticator(t)
	mux := authMux(a)
	get := func(token string) int {
		req := httptest.NewRequest("GET", "/v1/accounts/"+acc1+"/messages", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := get(tokSupport); got != 200 {
		t.Fatalf("before reload: %d", got)
	}

	// A changed file: support is revoked, a new token appears.
	f := testTokens()
	f.Tokens[1] = authFileToken{Name: "support-2", SHA256: HashToken("tok-new"), Accounts: []string{acc1}, Scopes: []Scope{ScopeRead}}
	writeAuthFile(t, path, f)
	if got := get(tokSupport); got != 200 {
		t.Fatalf("file changed but not reloaded: %d", got)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := get(tokSupport); got != 401 {
		t.Errorf("revoked token after reload: %d, want 401", got)
	}
	if got := get("tok-new"); got != 200 {
		t.Errorf("new token after reload: %d, want 200", got)
	}

	// Failed reloads keep the tokens in force.
	bad := []struct {
		name  string
		write func()
	}{
		{"invalid JSON", func() { _ = os.WriteFile(path, []byte(`{"tokens": [`), 0o600) }},
		{"invalid entry", func() {
			g := testTokens()
			g.Tokens[0].Scopes = []Scope{"superuser"}
			writeAuthFile(t, path, g)
		}},
		{"missing file", func() { _ = os.Remove(path) }},
	}
	for _, b := range bad {
		b.write()
		if err := a.Reload(); err == nil {
			t.Errorf("%s: Reload succeeded", b.name)
		}
		if got := get("tok-new"); got != 200 {
			t.Errorf("%s: token in force before the failed reload: %d, want 200", b.name, got)
		}
		if got := get(tokSupport); got != 401 {
			t.Errorf("%s: revoked token: %d, want 401", b.name, got)
		}
		if a.Tokens().Len() != 3 {
			t.Errorf("%s: %d tokens in force, want 3", b.name, a.Tokens().Len())
		}
	}
}

func TestReloadConcurrent(t *testing.T) {
	a, _ := newTestAuthenticator(t)
	mux := authMux(a)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			if err := a.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 200 {
		req := httptest.NewRequest("GET", "/v1/accounts/"+acc1+"/messages", nil)
		req.Header.Set("Authorization", "Bearer "+tokSupport)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("status %d during reloads", rec.Code)
		}
	}
	<-done
}

func TestStaticAuthenticator(t *testing.T) {
	tok, err := ParseTokens(mustJSON(t, testTokens()))
	if err != nil {
		t.Fatal(err)
	}
	a := NewStaticAuthenticator(tok)
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tokSupport)
	if p, err := a.Authenticate(req); err != nil || p.Name != "support" {
		t.Errorf("Authenticate = %q, %v", p.Name, err)
	}
	if err := a.Reload(); err == nil {
		t.Error("Reload of a static authenticator succeeded")
	}
	if got := strings.Join(a.Tokens().Names(), ","); got != "billing,support,writer" {
		t.Errorf("Names() = %q", got)
	}
	if (*Tokens)(nil).Len() != 0 || (*Tokens)(nil).Names() != nil {
		t.Error("nil Tokens is not empty")
	}
}

func TestDevAuthFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev-auth.json")
	// A pre-existing, world-readable file is replaced with a 0600 one.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	token, err := WriteDevAuthFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^pf_[A-Za-z0-9_-]{43}$`).MatchString(token) {
		t.Errorf("token %q: want pf_ and 43 base64url characters", token)
	}
	if _, ok := parseAuthorization("Bearer " + token); !ok {
		t.Errorf("token %q is not a valid bearer token", token)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), token) || strings.Contains(string(data), token[3:]) {
		t.Error("the auth file holds the token itself")
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the auth file (temporary file left?)", len(entries))
	}

	a, err := NewAuthenticator(path)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	p, err := a.Authenticate(req)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != DevTokenName {
		t.Errorf("name %q", p.Name)
	}
	for _, s := range allScopes {
		if !p.Allows(s, acc1) || !p.Allows(s, "AC"+strings.Repeat("f", 32)) {
			t.Errorf("dev token lacks %s", s)
		}
	}

	// A second dev file holds a different token; after Reload the first is gone.
	token2, err := WriteDevAuthFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if token2 == token {
		t.Fatal("same token twice")
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(req); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("old dev token after reload: %v", err)
	}
}

func TestDevAuthFileBadDir(t *testing.T) {
	_, err := WriteDevAuthFile(filepath.Join(t.TempDir(), "missing", "auth.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err %v, want ErrNotExist", err)
	}
}

func TestParseTokensErrors(t *testing.T) {
	h := HashToken("x")
	tests := []struct {
		name string
		json string
		want []string // substrings of the error; nil means valid
	}{
		{name: "valid", json: `{"tokens":[{"name":"a","sha256":"` + h + `","accounts":["*"],"scopes":["read"]}]}`},
		{name: "uppercase hash", json: `{"tokens":[{"name":"a","sha256":"` + strings.ToUpper(h) + `","accounts":["` + acc1 + `"],"scopes":["read","read"]}]}`},
		{name: "not JSON", json: `tokens:`, want: []string{"parse"}},
		{name: "not an object", json: `[]`, want: []string{"parse"}},
		{name: "trailing data", json: `{"tokens":[{"name":"a","sha256":"` + h + `","accounts":["*"],"scopes":["read"]}]} {}`, want: []string{"after the top-level"}},
		{name: "unknown top field", json: `{"token":[]}`, want: []string{`unknown field "token"`}},
		{name: "unknown entry field", json: `{"tokens":[{"name":"a","sha256":"` + h + `","accounts":["*"],"scope":["read"]}]}`, want: []string{`unknown field "scope"`}},
		{name: "no tokens", json: `{"tokens":[]}`, want: []string{"at least one token"}},
		{name: "missing tokens", json: `{}`, want: []string{"at least one token"}},
		{name: "empty name", json: `{"tokens":[{"sha256":"` + h + `","accounts":["*"],"scopes":["read"]}]}`, want: []string{`tokens[0] "": name: empty`}},
		{name: "duplicate name", json: `{"tokens":[{"name":"a","sha256":"` + h + `","accounts":["*"],"scopes":["read"]},{"name":"a","sha256":"` + HashToken("y") + `","accounts":["*"],"scopes":["read"]}]}`,
			want: []string{`tokens[1] "a": name: same as tokens[0]`}},
		{name: "duplicate hash", json: `{"tokens":[{"name":"a","sha256":"` + h + `","accounts":["*"],"scopes":["read"]},{"name":"b","sha256":"` + strings.ToUpper(h) + `","accounts":["*"],"scopes":["read"]}]}`,
			want: []string{`tokens[1] "b": sha256: same as tokens[0]`}},
		{name: "short hash", json: `{"tokens":[{"name":"a","sha256":"abcdef0123","accounts":["*"],"scopes":["read"]}]}`, want: []string{"sha256: want 64 hex digits, got 10 characters"}},
		{name: "missing hash", json: `{"tokens":[{"name":"a","accounts":["*"],"scopes":["read"]}]}`, want: []string{"sha256: want 64 hex digits, got 0"}},
		{name: "non-hex hash", json: `{"tokens":[{"name":"a","sha256":"` + strings.Repeat("g", 64) + `","accounts":["*"],"scopes":["read"]}]}`, want: []string{"sha256: want 64 hex digits: encoding/hex"}},
		{name: "no accounts", json: `{"tokens":[{"name":"a","sha256":"` + h + `","scopes":["read"]}]}`, want: []string{"accounts: empty"}},
		{name: "bad account", json: `{"tokens":[{"name":"a","sha256":"` + h + `","accounts":["AC123"],"scopes":["read"]}]}`, want: []string{`accounts: "AC123" is neither`}},
		{name: "uppercase account", json: `{"tokens":[{"name":"a","sha256":"` + h + `","accounts":["AC0000000000000000000000000000000A"],"scopes":["read"]}]}`, want: []string{"accounts:"}},
		{name: "no scopes", json: `{"tokens":[{"name":"a","sha256":"` + h + `","accounts":["*"],"scopes":[]}]}`, want: []string{"scopes: empty"}},
		{name: "unknown scope", json: `{"tokens":[{"name":"a","sha256":"` + h + `","accounts":["*"],"scopes":["read","superuser"]}]}`, want: []string{`unknown scope "superuser"`}},
		{name: "scope case matters", json: `{"tokens":[{"name":"a","sha256":"` + h + `","accounts":["*"],"scopes":["READ"]}]}`, want: []string{`unknown scope "READ"`}},
		{name: "every problem reported", json: `{"tokens":[{"name":"a","sha256":"00","accounts":["x"],"scopes":["y"]},{"name":"","sha256":"` + h + `","accounts":["*"],"scopes":["read"]}]}`,
			want: []string{`tokens[0] "a": sha256`, `tokens[0] "a": accounts: "x"`, `tokens[0] "a": scopes: unknown scope "y"`, `tokens[1] "": name: empty`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ParseTokens([]byte(tt.json))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				if tok.Len() != 1 {
					t.Errorf("%d tokens", tok.Len())
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadTokensErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadTokens(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(path, []byte(`{"tokens":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadTokens(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("invalid file: error %v does not name the file", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bearerRE is an independent statement of the syntax parseAuthorization
// accepts (RFC 6750 §2.1 b64token after a case-insensitive "Bearer").
var bearerRE = regexp.MustCompile(`^[ \t]*(?i:bearer) +([A-Za-z0-9._~+/-]+=*)[ \t]*$`)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"", "Bearer", "Bearer ", "Bearer x", "bearer x", "BEARER x", "Bearer  x", " Bearer x\t",
		"Bearer x=", "Bearer x==", "Bearer =", "Bearer x=y", "Bearer a b", "Bearer\tx", "Basic x",
		"Bearerx", "Bearer pf_" + strings.Repeat("A", 43), "Bearer é", "Bearer x\x00", "Bearer " + tokWriter,
		"Bearer " + strings.Repeat("a", maxTokenLen+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		token, ok := parseAuthorization(h)
		m := bearerRE.FindStringSubmatch(h)
		wantOK := m != nil && len(m[1]) <= maxTokenLen
		if ok != wantOK {
			t.Fatalf("parseAuthorization(%q) ok = %v, regexp says %v", h, ok, wantOK)
		}
		if !ok {
			if token != "" {
				t.Fatalf("parseAuthorization(%q) = %q with ok false", h, token)
			}
			return
		}
		if token != m[1] {
			t.Fatalf("parseAuthorization(%q) = %q, regexp says %q", h, token, m[1])
		}
		again, ok := parseAuthorization("Bearer " + token)
		if !ok || again != token {
			t.Fatalf("round trip of %q: %q, %v", token, again, ok)
		}
	})
}
