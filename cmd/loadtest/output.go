package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/postflight/postflight/loadtest"
)

// outputs are where a finished report goes besides the terminal.
type outputs struct {
	json string // --json FILE
	html string // --html FILE
}

// finish prints the summary of an evaluated report, writes its files, and
// returns an error wrapping loadtest.ErrCriteriaFailed when a criterion
// failed (so the exit status says so after every file is written).
func finish(rep *loadtest.Report, out outputs, stdout io.Writer) error {
	if err := loadtest.WriteSummary(stdout, rep); err != nil {
		return err
	}
	if out.json != "" {
		if err := loadtest.WriteJSONFile(out.json, rep); err != nil {
			return err
		}
	}
	if out.html != "" {
		if err := writeHTMLFile(out.html, rep); err != nil {
			return err
		}
	}
	if rep.Passed() {
		return nil
	}
	var failed []string
	for _, name := range slices.Sorted(maps.Keys(rep.Criteria)) {
		if rep.Criteria[name] != loadtest.Pass {
			failed = append(failed, name)
		}
	}
	return fmt.Errorf("%w: %v", loadtest.ErrCriteriaFailed, failed)
}

func writeHTMLFile(path string, rep *loadtest.Report) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("html report: %w", cerr)
		}
	}()
	return loadtest.WriteHTML(f, rep)
}
