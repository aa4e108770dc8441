//go:build !linux

package sqldb

import "os"

// datasync writes f to disk (fsync where fdatasync is not at hand).
func datasync(f *os.File) error { return f.Sync() }
