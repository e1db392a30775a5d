package store

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Reading the event-write response
//
// encoding/json read a BatchExecuteStatement response by reflection, with a
// map for the index capacities: ~0.7 µs per written record in serve's
// profile (4 % of its samples), for a response of ~25 small objects.
// fastBatchOutput reads the shapes DynamoDB answers with in one pass and
// gives up on anything it is not sure to read exactly as encoding/json does
// (an escaped or non-UTF-8 string, a key differing from a field name only in
// case, a repeated field, a null, a number out of range, anything
// malformed); decodeBatchOutput then falls back to encoding/json, which
// stays the reference: FuzzBatchOutput holds every answer of the fast path
// to it.

// decodeBatchOutput reads a BatchExecuteStatement response into out.
func decodeBatchOutput(p []byte, out *batchOutput) error {
	if fastBatchOutput(p, out) {
		return nil
	}
	*out = batchOutput{}
	return json.Unmarshal(p, out)
}

// fastBatchOutput reads p into out and reports whether it could; if not,
// out holds garbage.
func fastBatchOutput(p []byte, out *batchOutput) bool {
	*out = batchOutput{}
	s := scanner{p: p}
	var seen [2]bool
	ok := s.object(func(k []byte) bool {
		switch f := field(k, "Responses", "ConsumedCapacity"); {
		case f < 0:
			return f == unknownField && s.skip(0)
		case seen[f]:
			return false
		case f == 0:
			seen[f] = true
			out.Responses = make([]statementResult, 0, MaxBatch)
			return s.array(func() bool {
				var r statementResult
				ok := s.statementResult(&r)
				out.Responses = append(out.Responses, r)
				return ok
			})
		default:
			seen[f] = true
			out.ConsumedCapacity = []consumedCapacity{}
			return s.array(func() bool {
				var c consumedCapacity
				ok := s.consumed(&c)
				out.ConsumedCapacity = append(out.ConsumedCapacity, c)
				return ok
			})
		}
	})
	s.ws()
	return ok && s.i == len(p)
}

func (s *scanner) statementResult(r *statementResult) bool {
	seen := false
	return s.object(func(k []byte) bool {
		switch f := field(k, "Error"); {
		case f < 0:
			return f == unknownField && s.skip(0)
		case seen:
			return false
		}
		seen = true
		r.Error = &struct {
			Code    string
			Message string
		}{}
		var seenErr [2]bool
		return s.object(func(k []byte) bool {
			switch f := field(k, "Code", "Message"); {
			case f < 0:
				return f == unknownField && s.skip(0)
			case seenErr[f]:
				return false
			default:
				seenErr[f] = true
				v, ok := s.str()
				if f == 0 {
					r.Error.Code = string(v)
				} else {
					r.Error.Message = string(v)
				}
				return ok
			}
		})
	})
}

func (s *scanner) consumed(c *consumedCapacity) bool {
	var seen [3]bool
	return s.object(func(k []byte) bool {
		switch f := field(k, "CapacityUnits", "Table", "GlobalSecondaryIndexes"); {
		case f < 0:
			return f == unknownField && s.skip(0)
		case seen[f]:
			return false
		case f == 0:
			seen[f] = true
			var ok bool
			c.CapacityUnits, ok = s.float()
			return ok
		case f == 1:
			seen[f] = true
			c.Table = &capacityUnits{}
			return s.units(c.Table)
		default:
			seen[f] = true
			c.GlobalSecondaryIndexes = map[string]capacityUnits{}
			return s.object(func(k []byte) bool {
				name := string(k)
				if _, dup := c.GlobalSecondaryIndexes[name]; dup {
					return false
				}
				var u capacityUnits
				ok := s.units(&u)
				c.GlobalSecondaryIndexes[name] = u
				return ok
			})
		}
	})
}

func (s *scanner) units(u *capacityUnits) bool {
	seen := false
	return s.object(func(k []byte) bool {
		switch f := field(k, "CapacityUnits"); {
		case f < 0:
			return f == unknownField && s.skip(0)
		case seen:
			return false
		default:
			seen = true
			var ok bool
			u.CapacityUnits, ok = s.float()
			return ok
		}
	})
}

const (
	unknownField = -1 // a key no field has: skipped, as encoding/json does
	unsureField  = -2 // a key encoding/json may match to a field by folding case
)

// field returns the index of the name k is, unknownField, or unsureField.
func field(k []byte, names ...string) int {
	for i, n := range names {
		if string(k) == n {
			return i
		}
	}
	for _, c := range k {
		if c >= utf8.RuneSelf {
			return unsureField
		}
	}
	for _, n := range names {
		if foldEqual(k, n) {
			return unsureField
		}
	}
	return unknownField
}

// foldEqual reports whether ASCII k and n are equal but for case.
func foldEqual(k []byte, n string) bool {
	if len(k) != len(n) {
		return false
	}
	for i, c := range k {
		if lower(c) != lower(n[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// scanner reads JSON from p at i.
type scanner struct {
	p []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.p) {
		switch s.p[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat consumes c, after white space, if it comes next.
func (s *scanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.p) && s.p[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.p) {
		return s.p[s.i]
	}
	return 0
}

// object reads an object, calling member after each key and its colon to
// read the value.
func (s *scanner) object(member func(k []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	for {
		k, ok := s.str()
		if !ok || !s.eat(':') || !member(k) {
			return false
		}
		if !s.eat(',') {
			return s.eat('}')
		}
	}
}

// array reads an array, calling elem to read each element.
func (s *scanner) array(elem func() bool) bool {
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !s.eat(',') {
			return s.eat(']')
		}
	}
}

// str reads a string with no escape in it, as the bytes of p it spans.
func (s *scanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.p); s.i++ {
		switch c := s.p[s.i]; {
		case c == '"':
			v := s.p[start:s.i]
			s.i++
			return v, utf8.Valid(v)
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// float reads a number as encoding/json reads one into a float64.
func (s *scanner) float() (float64, bool) {
	s.ws()
	start := s.i
	if !s.number() {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(s.p[start:s.i]), 64)
	return f, err == nil
}

// number reads a number by JSON's grammar.
func (s *scanner) number() bool {
	digits := func() int {
		n := 0
		for s.i < len(s.p) && s.p[s.i] >= '0' && s.p[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.p) && s.p[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.p) && s.p[s.i] == '0':
		s.i++
	case digits() == 0:
		return false
	}
	if s.i < len(s.p) && s.p[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if s.i < len(s.p) && (s.p[s.i] == 'e' || s.p[s.i] == 'E') {
		s.i++
		if s.i < len(s.p) && (s.p[s.i] == '+' || s.p[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// skip reads any value no field takes.
func (s *scanner) skip(depth int) bool {
	if depth > 16 {
		return false
	}
	switch c := s.peek(); c {
	case '"':
		_, ok := s.str()
		return ok
	case '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case 't', 'f', 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if lit[0] == c {
				if len(s.p)-s.i < len(lit) || string(s.p[s.i:s.i+len(lit)]) != lit {
					return false
				}
				s.i += len(lit)
				return true
			}
		}
		return false
	default:
		return s.number()
	}
}
