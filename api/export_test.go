package api

// For the external tests (package api_test): the one fake store.
type StubStore = stubStore

var StubNow = stubNow

// NewStubStore returns the fake store; every method fails with err when it
// is not nil.
func NewStubStore(err error) *StubStore { return &stubStore{err: err} }

// Allows reports whether the principal holds scope for account.
func (p Principal) Allows(scope Scope, account string) bool {
	return p.HasScope(scope) && p.HasAccount(account)
}

// NewStaticAuthenticator accepts exactly t; Reload fails.
func NewStaticAuthenticator(t *Tokens) *Authenticator {
	a := &Authenticator{}
	a.tokens.Store(t)
	return a
}
