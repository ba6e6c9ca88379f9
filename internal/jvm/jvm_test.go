package jvm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A server that finds its port taken (another program bound it first)
// must be started again on another port, not waited for until the limit,
// nor taken for the program that answers on that port.
func TestServeMovesOffATakenPort(t *testing.T) {
	for name, script := range map[string]string{
		"stays up, as ElasticMQ does":   "echo 'java.net.BindException: Address already in use'; exec sleep 60",
		"exits, as DynamoDB Local does": "echo 'java.net.BindException: Address already in use'; exit 1",
	} {
		t.Run(name, func(t *testing.T) {
			var launched []*Process
			var ports []int
			launch := func(port int) (*Process, error) {
				s := "exec sleep 60" // serves, as far as ready can tell
				if len(launched) == 0 {
					s = script
				}
				p, err := start(t.TempDir(), nil, "sh", "-c", s)
				if err == nil {
					launched = append(launched, p)
					ports = append(ports, port)
				}
				return p, err
			}
			// Whoever holds the first port answers, once the first
			// program has tried to bind it.
			p, port, err := Serve(t.Context(), 10*time.Second, launch, func(context.Context, int) error {
				if len(launched) == 1 && !launched[0].portTaken() {
					return errors.New("not yet")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			if len(launched) != 2 || p != launched[1] || port != ports[1] {
				t.Fatalf("%d starts, on ports %v, serving on %d: want the second start's", len(launched), ports, port)
			}
			select {
			case <-launched[0].Exited():
			case <-time.After(5 * time.Second):
				t.Fatal("the server that lost its port was left running")
			}
		})
	}
}

// A reserved port is held against every other process until released.
func TestReservePortLocksAcrossProcesses(t *testing.T) {
	port, release, err := reservePort()
	if err != nil {
		t.Fatal(err)
	}
	// Another process would open the same file: a new descriptor's lock
	// conflicts with this process's as it would with another's.
	f, err := os.Open(filepath.Join(os.TempDir(), "serverless-chat-ports-"+strconv.Itoa(os.Getuid()), strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("locking port %d while it is reserved: %v, want EWOULDBLOCK", port, err)
	}
	release()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("locking port %d once released: %v", port, err)
	}
}

// TempDir removes the folders that processes killed before they could
// left behind, and no other.
func TestTempDirRemovesOnlyAbandonedFolders(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	old := time.Now().Add(-2 * time.Minute)
	folder := func(name string, lock bool) string {
		d := filepath.Join(os.TempDir(), name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if lock {
			if err := os.WriteFile(filepath.Join(d, ".lock"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	abandoned := folder("kind-killed", true)
	foreign := folder("kind-not-ours", false)
	live, remove, err := TempDir("kind") // in use, by this process
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	for _, d := range []string{abandoned, foreign, live} {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}
	young := folder("kind-being-made", true)

	next, removeNext, err := TempDir("kind")
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{abandoned: false, foreign: true, live: true, young: true, next: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: there %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
	removeNext()
	if _, err := os.Stat(next); !os.IsNotExist(err) {
		t.Errorf("remove left %s (%v)", next, err)
	}
}
