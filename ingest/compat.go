package ingest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// Incompatibility is one reason data written with one schema cannot be
// read with another, at Path (e.g. "MessageEvent.tags<values>").
type Incompatibility struct {
	Path   string
	Reason string
}

func (i Incompatibility) String() string { return i.Path + ": " + i.Reason }

// CheckFull reports why newer and older are not fully compatible: newer
// must read data written with older (backward) and older must read data
// written with newer (forward). Each finding says which direction broke.
func CheckFull(newer, older avro.Schema) []Incompatibility {
	var out []Incompatibility
	for _, inc := range CheckReadable(newer, older) {
		inc.Reason = "backward (new reads old): " + inc.Reason
		out = append(out, inc)
	}
	for _, inc := range CheckReadable(older, newer) {
		inc.Reason = "forward (old reads new): " + inc.Reason
		out = append(out, inc)
	}
	return out
}

// CheckReadable lists every reason a reader with schema reader cannot read
// data written with schema writer, by the Avro specification's schema
// resolution rules, each at the path where it occurs. It is stricter than
// resolution in one way: a changed logical type (e.g. timestamp-millis to
// timestamp-micros) resolves but changes what the data means, and is
// reported. hamba's SchemaCompatibility is its oracle in tests (same
// verdict on everything else; hamba names no paths).
func CheckReadable(reader, writer avro.Schema) []Incompatibility {
	c := checker{seen: map[[2]string]bool{}}
	c.check(rootName(reader), reader, writer)
	return c.out
}

func rootName(s avro.Schema) string {
	if n, ok := deref(s).(avro.NamedSchema); ok {
		return n.Name()
	}
	return string(s.Type())
}

type checker struct {
	out  []Incompatibility
	seen map[[2]string]bool // named pairs under check: recursive types end here
}

func (c *checker) fail(path, format string, args ...any) {
	c.out = append(c.out, Incompatibility{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// promotions: writer type → reader types it may be read as.
var promotions = map[avro.Type][]avro.Type{
	avro.Int:    {avro.Long, avro.Float, avro.Double},
	avro.Long:   {avro.Float, avro.Double},
	avro.Float:  {avro.Double},
	avro.String: {avro.Bytes},
	avro.Bytes:  {avro.String},
}

// matches reports, without recording anything, whether writer resolves to
// reader (used to pick a reader union branch).
func matches(reader, writer avro.Schema) bool {
	c := checker{seen: map[[2]string]bool{}}
	c.check("", reader, writer)
	return len(c.out) == 0
}

func (c *checker) check(path string, reader, writer avro.Schema) {
	reader, writer = deref(reader), deref(writer)
	if wu, ok := writer.(*avro.UnionSchema); ok {
		// Every branch the writer may have used must be readable.
		for _, b := range wu.Types() {
			c.check(path+"<"+typeName(b)+">", reader, b)
		}
		return
	}
	if ru, ok := reader.(*avro.UnionSchema); ok {
		for _, b := range ru.Types() {
			if matches(b, writer) {
				c.check(path, b, writer)
				return
			}
		}
		c.fail(path, "writer type %s matches no branch of the reader's union %s", typeName(writer), unionNames(ru))
		return
	}
	rt, wt := reader.Type(), writer.Type()
	if rt != wt {
		if slices.Contains(promotions[wt], rt) {
			return
		}
		c.fail(path, "type changed: written as %s, read as %s", typeName(writer), typeName(reader))
		return
	}
	switch r := reader.(type) {
	case *avro.PrimitiveSchema:
		w := writer.(*avro.PrimitiveSchema)
		if lr, lw := logicalName(r.Logical()), logicalName(w.Logical()); lr != lw {
			c.fail(path, "logical type changed: written as %s, read as %s", orNone(lw), orNone(lr))
		}
	case *avro.RecordSchema:
		w := writer.(*avro.RecordSchema)
		if !c.sameName(path, r, w) {
			return
		}
		key := [2]string{r.FullName(), w.FullName()}
		if c.seen[key] {
			return
		}
		c.seen[key] = true
		for _, rf := range r.Fields() {
			wf := writerField(w, rf)
			fp := path + "." + rf.Name()
			if wf == nil {
				if !rf.HasDefault() {
					c.fail(fp, "field is missing in the writer's schema and has no default")
				}
				continue
			}
			c.check(fp, rf.Type(), wf.Type())
		}
	case *avro.EnumSchema:
		w := writer.(*avro.EnumSchema)
		if !c.sameName(path, r, w) {
			return
		}
		if r.HasDefault() {
			return // unknown symbols read as the default
		}
		for _, sym := range w.Symbols() {
			if !slices.Contains(r.Symbols(), sym) {
				c.fail(path, "enum %s: symbol %s is written but unknown to the reader, which has no default", r.Name(), sym)
			}
		}
	case *avro.FixedSchema:
		w := writer.(*avro.FixedSchema)
		if !c.sameName(path, r, w) {
			return
		}
		if r.Size() != w.Size() {
			c.fail(path, "fixed %s: size changed from %d to %d", r.Name(), w.Size(), r.Size())
		}
	case *avro.ArraySchema:
		c.check(path+"[]", r.Items(), writer.(*avro.ArraySchema).Items())
	case *avro.MapSchema:
		c.check(path+"<values>", r.Values(), writer.(*avro.MapSchema).Values())
	}
}

// sameName: named types resolve only if the reader's name (or one of its
// aliases) is the writer's unqualified name.
func (c *checker) sameName(path string, r, w avro.NamedSchema) bool {
	if r.Name() == w.Name() || slices.Contains(r.Aliases(), w.Name()) || slices.Contains(r.Aliases(), w.FullName()) {
		return true
	}
	c.fail(path, "%s renamed: written as %s, read as %s (add an alias)", r.Type(), w.FullName(), r.FullName())
	return false
}

// writerField is the writer's field the reader's field reads: same name or
// one of the reader field's aliases.
func writerField(w *avro.RecordSchema, rf *avro.Field) *avro.Field {
	for _, wf := range w.Fields() {
		if wf.Name() == rf.Name() || slices.Contains(rf.Aliases(), wf.Name()) {
			return wf
		}
	}
	return nil
}

func typeName(s avro.Schema) string {
	s = deref(s)
	if n, ok := s.(avro.NamedSchema); ok {
		return string(s.Type()) + " " + n.Name()
	}
	if p, ok := s.(*avro.PrimitiveSchema); ok && p.Logical() != nil {
		return string(s.Type()) + " (" + string(p.Logical().Type()) + ")"
	}
	return string(s.Type())
}

func unionNames(u *avro.UnionSchema) string {
	names := make([]string, len(u.Types()))
	for i, b := range u.Types() {
		names[i] = typeName(b)
	}
	return "[" + strings.Join(names, ", ") + "]"
}

func logicalName(l avro.LogicalSchema) string {
	if l == nil {
		return ""
	}
	return string(l.Type())
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
