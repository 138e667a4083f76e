package pebble

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/workflowd/workflowd/store"
)

// ErrClosed is wrapped by the error of every call made after Close.
var ErrClosed = errors.New("embedded store closed")

// Options configures Open.
type Options struct {
	// Dir is the database directory; "" keeps the database in memory.
	Dir string
	// Logger receives pebble's messages and background errors; nil means
	// slog.Default().
	Logger *slog.Logger
	// CacheBytes is the size of pebble's block cache; 0 means 8 MiB.
	CacheBytes int64
	// FeedConsumers names the consumers whose checkpoints bound feed
	// trimming: entries are deleted only at or below the lowest checkpoint of
	// all of them, and not before each has saved one.
	FeedConsumers []string
	// Retention is how long a finished execution's view is kept after it
	// finished; PurgeExpired deletes it after that (0: kept for ever). The
	// event log keeps its history.
	Retention time.Duration
	// CommandRetention is how long a command's status is kept after the
	// command was accepted (the time its UUID carries); PurgeExpired
	// deletes it after that (0: kept for ever). Statuses whose UUIDs carry
	// no time (an earlier build's) are kept.
	CommandRetention time.Duration
	// FS, if set, is the file system the database lives in, at Dir (the
	// simulator's, which drops what was not synced at a crash); nil means
	// the operating system's (or memory, for an empty Dir).
	FS vfs.FS
	// Now is the clock idempotency claims expire by (nil: time.Now).
	Now func() time.Time
}

const (
	defaultCacheBytes = 32 << 20
	memTableSize      = 8 << 20
	lockStripes       = 4096
)

// Store is the pebble-backed store. It implements store.Store, store.Feed and
// store.Pinger and is safe for concurrent use.
type Store struct {
	db     *pebble.DB
	log    *slog.Logger
	dir    string
	locks  [lockStripes]sync.Mutex
	seed   maphash.Seed
	feed   feedState
	trim   trimState
	closed chan struct{} // closed by Close, wakes feed readers

	retention        time.Duration // Options.Retention
	commandRetention time.Duration // Options.CommandRetention
	now              func() time.Time

	// closeMu guards the db against Close: every call holds it for reading
	// while it uses the db; Close takes it for writing.
	closeMu  sync.RWMutex
	isClosed bool
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Feed   = (*Store)(nil)
	_ store.Pinger = (*Store)(nil)
)

// Open opens (creating if needed) the database described by opts.
func Open(opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "embedded")
	for _, c := range opts.FeedConsumers {
		if c == "" {
			return nil, fmt.Errorf("open embedded store %q: empty name in FeedConsumers", opts.Dir)
		}
	}
	cacheBytes := opts.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = defaultCacheBytes
	}
	cache := pebble.NewCache(cacheBytes)
	defer cache.Unref()

	po := &pebble.Options{
		Cache:              cache,
		MemTableSize:       memTableSize,
		MaxOpenFiles:       500,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{log},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { log.Error("pebble background error", "err", err) },
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				log.Warn("pebble write stall", "reason", info.Reason)
			},
		},
	}
	// Bloom filters make the eventUUID-index lookup of every append (almost
	// always a miss) cheap.
	po.Levels = make([]pebble.LevelOptions, 7)
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].FilterType = pebble.TableFilter
		// Small JSON records compress poorly and are read hot: snappy's CPU
		// cost outweighs the disk it saves.
		po.Levels[i].Compression = pebble.NoCompression
	}
	dir := opts.Dir
	switch {
	case opts.FS != nil:
		po.FS = opts.FS
	case dir == "":
		po.FS = vfs.NewMem()
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open embedded store %q: %w", opts.Dir, err)
	}
	s := &Store{
		db:     db,
		log:    log,
		dir:    opts.Dir,
		seed:   maphash.MakeSeed(),
		closed: make(chan struct{}),

		retention:        opts.Retention,
		now:              opts.Now,
		commandRetention: opts.CommandRetention,
	}
	if err := s.initFeed(opts.FeedConsumers); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open embedded store %q: %w", opts.Dir, err)
	}
	return s, nil
}

// Close flushes the memtables (making every NoSync write durable) and closes
// the database. Calling it again does nothing and returns nil.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.isClosed {
		return nil
	}
	s.isClosed = true
	close(s.closed)
	ferr := s.db.Flush()
	cerr := s.db.Close()
	if err := errors.Join(ferr, cerr); err != nil {
		return fmt.Errorf("close embedded store %q: %w", s.dir, err)
	}
	return nil
}

// Ping reports whether the database is open and readable.
func (s *Store) Ping(ctx context.Context) error {
	const op = "ping"
	if err := s.enter(ctx, op, ""); err != nil {
		return err
	}
	defer s.exit()
	_, closer, err := s.db.Get(keyFeedTrim)
	if err == nil {
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return wrap(op, "", 0, err)
	}
	return nil
}

// enter starts a call: it fails if ctx is done or the store is closed, and
// otherwise holds closeMu for reading until exit.
func (s *Store) enter(ctx context.Context, op, id string) error {
	if err := ctx.Err(); err != nil {
		return wrap(op, id, 0, err)
	}
	s.closeMu.RLock()
	if s.isClosed {
		s.closeMu.RUnlock()
		return wrap(op, id, 0, ErrClosed)
	}
	return nil
}

func (s *Store) exit() { s.closeMu.RUnlock() }

// lock locks the stripe of the striped mutex table that guards the
// read-check-write of one item (kind separates the key spaces).
func (s *Store) lock(kind byte, id []byte) *sync.Mutex {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteByte(kind)
	h.Write(id)
	m := &s.locks[h.Sum64()%lockStripes]
	m.Lock()
	return m
}

// wrap gives err its context as a *store.Error.
func wrap(op, id string, seq int64, err error) error {
	return &store.Error{Op: op, AggregateID: id, Seq: seq, Err: err}
}

// invalid returns an ErrInvalid for op saying what is wrong.
func invalid(op, id string, seq int64, format string, args ...any) error {
	return store.Invalid(op, id, seq, format, args...)
}

// get returns a copy of the value at key, or (nil, false) when there is none.
func get(r pebble.Reader, key []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

// pebbleLogger sends pebble's log lines to slog: informational lines at
// debug level (pebble is chatty), fatal ones at error level before the
// panic pebble's contract requires (Fatalf must not return).
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "source", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "source", "pebble")
	panic("pebble: " + msg)
}
