//go:build unix && !linux

package dev

import "syscall"

// sysProcAttr puts a child in its own process group, so that a kill of the
// group reaches what it spawned and a Ctrl-C in the terminal reaches only
// meshfed dev. Without Linux's parent-death signal, children outlive a
// meshfed dev that is itself killed with SIGKILL.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// killGroup sends SIGKILL to process group pgid; a group already gone is
// not an error.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
