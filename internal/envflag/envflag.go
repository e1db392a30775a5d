// Package envflag fills flags from the environment: every flag of a parsed
// FlagSet that was not given on the command line takes PREFIX_<FLAG> (upper
// case, dashes as underscores) if set. Command line beats environment beats
// default.
package envflag

import (
	"flag"
	"fmt"
	"strings"
)

// Fill sets every flag of fs not set on the command line from the
// environment variable prefix + "_" + its name, read with getenv.
func Fill(fs *flag.FlagSet, prefix string, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		key := prefix + "_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(key); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", key, serr)
			}
		}
	})
	return err
}
