package localjvm

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestOutput(t *testing.T) {
	tests := []struct {
		name     string
		writes   []string
		wantTail string
		wantBind bool
	}{
		{
			name:     "lines split across writes",
			writes:   []string{"Initializing Dyn", "amoDB Local\nPort:\t8000\r\n", "partial"},
			wantTail: "Initializing DynamoDB Local\nPort:\t8000\npartial",
		},
		{
			name:     "keeps the last lines",
			writes:   numberedLines(tailLines + 5),
			wantTail: strings.Join(numberedLinesNoNL(5, tailLines+5), "\n"),
		},
		{
			name:     "bind failure",
			writes:   []string{"Exception in thread \"main\" java.io.IOException: Failed to bind to 0.0.0.0/0.0.0.0:8000\n"},
			wantTail: "Exception in thread \"main\" java.io.IOException: Failed to bind to 0.0.0.0/0.0.0.0:8000",
			wantBind: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOutput(slog.New(slog.DiscardHandler), "dynamodb local", "Failed to bind", "BindException")
			for _, w := range tt.writes {
				if n, err := o.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := o.Tail(); got != tt.wantTail {
				t.Errorf("tail =\n%q\nwant\n%q", got, tt.wantTail)
			}
			if got := o.BindFailed(); got != tt.wantBind {
				t.Errorf("bind failed = %v, want %v", got, tt.wantBind)
			}
		})
	}
}

func numberedLines(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("line %d\n", i))
	}
	return out
}

func numberedLinesNoNL(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}
