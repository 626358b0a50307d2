package exec

import "syscall"

// sysProcAttr puts the child in its own process group, so that killing
// the group also kills what it spawned, and has the kernel kill it if the
// agent dies first. (Linux sends the parent-death signal when the forking
// thread exits. Go keeps its threads unless a goroutine exits while locked
// to one; were that to happen in the agent, a process could die early,
// which would look like a crash and be restarted.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup sends SIGKILL to process group pgid; a group already gone is
// not an error.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
