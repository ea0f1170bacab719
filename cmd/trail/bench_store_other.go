//go:build !linux

package main

import "syscall"

// childProcAttr: outside Linux the children share the bench's process group
// and are stopped by it as it ends.
func childProcAttr() *syscall.SysProcAttr { return nil }
