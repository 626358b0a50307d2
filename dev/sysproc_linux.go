package dev

import "syscall"

// sysProcAttr puts a child in its own process group, so that a kill of the
// group reaches what it spawned and a Ctrl-C in the terminal reaches only
// meshfed dev (which stops the children in order), and has the kernel kill
// it when meshfed dev dies, so that no child outlives it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup sends SIGKILL to process group pgid; a group already gone is
// not an error.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
