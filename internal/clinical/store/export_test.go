package store

// SetRelabelBatch sets how many resources one relabelling transaction
// covers, so tests cross batch boundaries with few resources.
func SetRelabelBatch(n int) (restore func()) {
	old := relabelBatch
	relabelBatch = n
	return func() { relabelBatch = old }
}
