package jvm

import "syscall"

// withParent makes the kernel kill the program when this process dies,
// however it dies (even by SIGKILL), so no JVM outlives its stack.
func withParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
