package dynamolocal

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// DynamoDB Local copies SQLite's native library (0.9 MB) into its
// temporary folder at each start and never removes it: the one Start
// launches gets a folder of its own, which Close removes.
func TestCloseLeavesNothingBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("starts DynamoDB Local")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("needs Java")
	}
	s, err := Start(t.Context(), func(string) string { return "" }, "")
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := filepath.Glob(filepath.Join(s.tmp, "*sqlite4java*"))
	if len(libs) == 0 {
		t.Errorf("SQLite's native library is not in DynamoDB Local's own folder %s: it went elsewhere", s.tmp)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.tmp); !os.IsNotExist(err) {
		t.Errorf("%s is left after Close (%v)", s.tmp, err)
	}
}
