package local

import "github.com/cockroachdb/pebble/vfs"

// OpenFS is Open on the file system fs: tests pass vfs.NewStrictMem() to
// throw away everything not synced, as a power loss would.
func OpenFS(opts Options, fs vfs.FS) (*Bus, error) {
	opts.fs = fs
	return Open(opts)
}
