package main

import "syscall"

// childProcAttr puts a "trail bench --store" child in a process group of its
// own, so that a terminal's Ctrl-C reaches the bench, which stops the
// children in order, and has the kernel send it SIGTERM should the bench
// die without stopping it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
