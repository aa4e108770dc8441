// Package failpoint lets crash tests kill the process at a named point, to
// prove that what carefront promises about atomicity holds through a kill -9
// at the worst moment (for example between a commit and the next step).
//
// A point fires only when the environment variable CAREFRONT_TEST_FAILPOINT
// names it when the process starts; otherwise Hit costs one comparison. It
// never logs, and it is never a way to change behaviour other than dying.
package failpoint

import (
	"os"
	"syscall"
)

// armed is the point named by CAREFRONT_TEST_FAILPOINT, read once.
var armed = os.Getenv("CAREFRONT_TEST_FAILPOINT")

// Hit kills the process with SIGKILL (no deferred functions, no flushing,
// as a power cut or the OOM killer would) when name is the armed point.
func Hit(name string) {
	if armed == "" || armed != name {
		return
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
