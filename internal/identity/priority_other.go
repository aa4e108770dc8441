//go:build !linux

package identity

// lowPriority runs fn; only Linux builds lower the hashing thread's priority.
func lowPriority(fn func()) { fn() }
