package main

import (
	"strings"
	"testing"
)

// A run stopped with Ctrl-C reports what it measured and says that the
// stored history was not checked, not "0 of 0 expected".
func TestReportInterrupted(t *testing.T) {
	var text strings.Builder
	report{Interrupted: true, Sent: 40, Acked: 38, LiveDelivered: 150}.print(&text)
	out := text.String()
	for _, want := range []string{"interrupted: what was measured so far", "150 live; not checked against the stored history", "promises               not checked"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "of 0 expected") || strings.Contains(out, "0 stored;") {
		t.Errorf("the report states an audit that did not run:\n%s", out)
	}
}
