package sqldb

import (
	"errors"
	"os"
	"syscall"
)

// datasync writes f's data, and the metadata needed to read it back (its
// size), to disk: fdatasync, as SQLite itself uses on Linux, skips the
// timestamps fsync would also write.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
