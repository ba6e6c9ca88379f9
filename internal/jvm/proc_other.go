//go:build !linux

package jvm

import "syscall"

// withParent: only Linux kills a child with its parent. Elsewhere (macOS)
// the program stops when this process stops it (Ctrl-C, a test's end); a
// stack killed by SIGKILL leaves its JVMs running.
func withParent() *syscall.SysProcAttr { return nil }
