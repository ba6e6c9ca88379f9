// Package jvm runs the Java programs the local stack borrows from Maven
// Central (DynamoDB Local, ElasticMQ, the local identity provider): it
// fetches their jars once with mvn into the repository's .cache
// (git-ignored) and runs them as child processes that die with their
// parent (on Linux; see withParent), each on a port of its own (Serve).
// It has no part in the Lambda functions.
package jvm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Fetch makes sure that .cache/NAME/VERSION/lib under the repository holds
// the jars pom depends on, and returns that folder; jar is one of them, by
// which a finished fetch is known. Concurrent processes serialise on a
// lock file.
func Fetch(ctx context.Context, name, version, jar string, pom []byte) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".cache", name, version)
	lib := filepath.Join(dir, "lib")
	fetched := func() bool { _, err := os.Stat(filepath.Join(lib, jar)); return err == nil }
	if fetched() {
		return lib, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	if fetched() {
		return lib, nil // another process fetched it while we waited
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return "", fmt.Errorf("fetching %s needs Maven (apt-get install maven)", name)
	}
	if err := os.WriteFile(filepath.Join(dir, "pom.xml"), pom, 0o644); err != nil {
		return "", err
	}
	tmp := lib + ".tmp"
	os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", filepath.Join(dir, "pom.xml"),
		"dependency:copy-dependencies", "-DoutputDirectory="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("fetch %s with mvn: %w\n%s", name, err, out)
	}
	if err := os.Rename(tmp, lib); err != nil {
		return "", err
	}
	return lib, nil
}

// Process is a Java program running as a child process.
type Process struct {
	cmd     *exec.Cmd
	output  *output
	exited  chan struct{} // closed when it has exited and been reaped
	exitErr error
}

// Start runs java with args in dir (a program that writes files into its
// working directory writes them there), with env added to this process's
// environment. On Linux the program is killed if this process dies.
func Start(dir string, env []string, args ...string) (*Process, error) {
	return start(dir, env, "java", args...)
}

func start(dir string, env []string, name string, args ...string) (*Process, error) {
	p := &Process{output: &output{}, exited: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	p.cmd.SysProcAttr = withParent()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.exitErr = p.cmd.Wait() // reaps it: no zombie, whoever stops it
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed when the program has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitReason says how the program ended, with the end of its output; call
// it after Exited is closed.
func (p *Process) ExitReason() string {
	return fmt.Sprintf("%v; last output:\n%s", p.exitErr, p.tail())
}

// tail returns the last lines of the program's output, about 2,000 bytes.
func (p *Process) tail() string {
	out := strings.TrimSpace(p.output.String())
	if i := strings.LastIndexByte(out[:max(len(out)-2000, 0)], '\n'); i >= 0 {
		out = out[i+1:]
	}
	return out
}

// Output returns the end of what the program wrote.
func (p *Process) Output() string { return p.output.String() }

// Stop kills the program and waits until it has exited.
func (p *Process) Stop() {
	p.cmd.Process.Kill()
	<-p.exited
}

// output keeps the end of a process's output, safe for the writes of the
// process and the reads of whoever reports on it.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.b.Len() > 64<<10 { // keep the last part only
		o.b.Next(o.b.Len() - 32<<10)
	}
	return o.b.Write(b)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// RepoRoot returns the folder holding go.mod, searching up from the
// working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Await calls ready every 200 ms until it succeeds, and fails if p (nil:
// nothing to watch) exits or says its port is taken first, ctx ends, or
// limit passes; then it returns ready's last error.
func Await(ctx context.Context, limit time.Duration, p *Process, ready func(context.Context) error) error {
	// Each ready check gets probeTimeout: a server still starting may
	// accept and not answer.
	deadline := time.Now().Add(limit)
	for {
		if err := p.failed(); err != nil {
			return err
		}
		try, cancel := context.WithTimeout(ctx, probeTimeout)
		err := ready(try)
		cancel()
		if err == nil {
			return p.failed() // the answer may have come from whoever holds its port
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// probeTimeout bounds each of Await's ready checks.
const probeTimeout = time.Second

// errPortTaken: the program could not listen on the port it was given.
var errPortTaken = errors.New("its port was taken before it could listen")

// failed says whether p (if any) has exited or said that its port is
// taken: some servers stay up after failing to bind. Once p has exited,
// its output has been read to the end.
func (p *Process) failed() error {
	if p == nil {
		return nil
	}
	select {
	case <-p.exited:
		if p.portTaken() {
			return errPortTaken
		}
		return errors.New("the process exited")
	default:
		if p.portTaken() {
			return errPortTaken
		}
		return nil
	}
}

// portTaken reports whether the program said it could not bind a port:
// Java says so with a BindException, whichever server wraps it. (A
// program that fails to bind some other port is only started again.)
func (p *Process) portTaken() bool {
	return strings.Contains(p.output.String(), "java.net.BindException")
}

// Serve runs a program that serves on a port of 127.0.0.1: launch starts
// it on a port, and Serve returns it and the port once ready answers
// within limit. The port is chosen free and reserved against the other
// processes that call Serve; a program that still finds its port taken
// (a program that does not reserve bound it first) is started on another
// one, in up to three starts. On error, the end of the program's output
// ends it.
func Serve(ctx context.Context, limit time.Duration, launch func(port int) (*Process, error), ready func(ctx context.Context, port int) error) (*Process, int, error) {
	for starts := 1; ; starts++ {
		p, port, err := serveOnce(ctx, limit, launch, ready)
		if err == nil || !errors.Is(err, errPortTaken) || starts == 3 {
			return p, port, err
		}
	}
}

func serveOnce(ctx context.Context, limit time.Duration, launch func(int) (*Process, error), ready func(context.Context, int) error) (*Process, int, error) {
	port, release, err := reservePort()
	if err != nil {
		return nil, 0, err
	}
	p, err := launch(port)
	if err != nil {
		release()
		return nil, 0, err
	}
	go func() { <-p.exited; release() }()
	if err := Await(ctx, limit, p, func(ctx context.Context) error { return ready(ctx, port) }); err != nil {
		p.Stop()
		return nil, 0, fmt.Errorf("on port %d: %w; last output:\n%s", port, err, p.tail())
	}
	return p, port, nil
}

// reservePort returns a port of 127.0.0.1 that was free a moment ago and
// that no other caller, in any process of this user, holds until release
// (a port taken on another interface is found by the server's bind: a
// listener on every interface here would make macOS's firewall ask). The kernel may hand one free port to two servers
// started at once, which bind it only seconds later, when their JVMs are
// up; a lock file per port keeps the second off it. The lock goes with
// the process, however it ends, and is not inherited by the server (Go
// opens files close-on-exec). The files stay: deleting a file that
// another process may be about to lock would let two lock it.
func reservePort() (port int, release func(), err error) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("serverless-chat-ports-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, nil, err
	}
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		f, ok, err := tryLock(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR)
		if err != nil {
			return 0, nil, err
		}
		if ok {
			return port, func() { f.Close() }, nil
		}
	}
	return 0, nil, errors.New("reserve a port: every one tried is held by another server starting")
}

// TempDir makes a folder for a server's files (its configuration, what
// it writes while it runs) in the temporary folder, and returns it with
// remove, which deletes it. While its process lives, the folder holds a
// locked file; folders of the same kind whose lock is free and that are
// over a minute old were left by processes killed before they could
// remove them, and go now (a JVM leaves about a megabyte each time).
func TempDir(kind string) (dir string, remove func(), err error) {
	if old, err := filepath.Glob(filepath.Join(os.TempDir(), kind+"-*")); err == nil {
		for _, d := range old {
			if abandoned(d) {
				os.RemoveAll(d)
			}
		}
	}
	if dir, err = os.MkdirTemp("", kind+"-"); err != nil {
		return "", nil, err
	}
	lock, ok, err := tryLock(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR)
	if err == nil && !ok {
		err = errors.New("held by another process")
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return dir, func() { lock.Close(); os.RemoveAll(dir) }, nil
}

// abandoned reports whether folder d, made by TempDir, is over a minute
// old (not one that another process is just making) and nobody holds its
// lock.
func abandoned(d string) bool {
	info, err := os.Stat(d)
	if err != nil || time.Since(info.ModTime()) < time.Minute {
		return false
	}
	f, ok, err := tryLock(filepath.Join(d, ".lock"), os.O_RDONLY)
	if err != nil {
		return false // not TempDir's
	}
	f.Close() // and with it the lock taken here
	return ok
}

// tryLock opens the file at path with flag (os.O_CREATE makes it) and
// takes its lock unless another open file holds it, in this process or
// another: ok says which. Closing f lets the lock go, as the process's
// end does.
func tryLock(path string, flag int) (f *os.File, ok bool, err error) {
	if f, err = os.OpenFile(path, flag, 0o600); err != nil {
		return nil, false, err
	}
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		return f, true, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		f.Close()
		return nil, false, nil
	default:
		f.Close()
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
}
