package ingest

import (
	"github.com/postflight/postflight"
)

// decision is what becomes of a decoded event.
type decision uint8

const (
	skipNonFinal decision = iota // counted, offset done at once
	store                        // handed to the batcher
)

// decide keeps final events only: a message is stored once it is postflight.
// Which final event wins (the highest sequence) is settled by the batcher in
// memory and, with authority, by the store's conditional writes.
func decide(ev *postflight.Event) decision {
	if ev.Status.IsFinal() {
		return store
	}
	return skipNonFinal
}

// msgKey identifies a message across accounts.
type msgKey struct{ account, sid string }

func key(m *postflight.Message) msgKey { return msgKey{m.AccountSID, m.SID} }
