package identity

import (
	"runtime"
	"syscall"
)

// lowPriority runs fn on an OS thread of its own with a lower scheduling
// priority (nice 10), so that while hashes use every core, the kernel still
// runs request handlers first and a sign-in past capacity is refused in
// milliseconds. The thread is never unlocked, so it ends with fn and its
// priority cannot leak to other goroutines.
func lowPriority(fn func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 10)
		defer close(done)
		fn()
	}()
	<-done
}
