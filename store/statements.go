package store

import "strings"

// statements holds the PartiQL texts of event writes. Every event write sets
// the same attributes (valueAttrs), so there are three texts per table,
// built once.
type statements struct {
	insert string // fails with DuplicateItem if the item exists
	update string // condition: older sequence, no tombstone, nothing pinned
	pinned string // condition: older sequence, no tombstone, same revision

	// jsonPrefix[k] opens a BatchStatementRequest of text k in DynamoDB's
	// JSON protocol, up to its first parameter (see appendStatement).
	jsonPrefix [3][]byte
}

type stmtKind uint8

const (
	kindInsert stmtKind = iota
	kindUpdate
	kindPinned
)

func (s *statements) init(table string) {
	t := `"` + strings.ReplaceAll(table, `"`, `""`) + `"`
	var b strings.Builder
	b.WriteString("INSERT INTO " + t + " VALUE {'p':?,'s':?")
	for _, a := range valueAttrs {
		b.WriteString(",'" + a + "':?")
	}
	b.WriteString(",'" + aRev + "':1}")
	s.insert = b.String()

	b.Reset()
	b.WriteString("UPDATE " + t)
	for _, a := range valueAttrs {
		b.WriteString(` SET "` + a + `"=?`)
	}
	b.WriteString(` SET "` + aRev + `"="` + aRev + `"+1 WHERE "p"=? AND "s"=? AND "` + aSeq + `"<? AND "` + aDeleted + `" IS MISSING`)
	common := b.String()
	s.update = common + ` AND "` + aRedacted + `" IS MISSING AND "` + aPriceFixed + `" IS MISSING`
	s.pinned = common + ` AND "` + aRev + `"=?`
	for k := range s.jsonPrefix {
		p := appendJSONString([]byte(`{"Statement":`), s.text(stmtKind(k)))
		s.jsonPrefix[k] = append(p, `,"Parameters":[`...)
	}
}

func (s *statements) text(k stmtKind) string {
	switch k {
	case kindInsert:
		return s.insert
	case kindUpdate:
		return s.update
	}
	return s.pinned
}
