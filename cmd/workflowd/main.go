// Command workflowd runs the workflow service. With no AWS settings it runs
// everything in one process on an embedded, durable store (see README.md for
// every flag and environment variable).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/app/embedded"
	"github.com/workflowd/workflowd/auth"
	"github.com/workflowd/workflowd/metrics"
	"github.com/workflowd/workflowd/secrets"
	"github.com/workflowd/workflowd/table"
	"github.com/workflowd/workflowd/workers"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "workflowd:", err)
		os.Exit(1)
	}
}

// settings are the command line and environment, flags winning.
type settings struct {
	addr              string
	dataDir           string
	logLevel          slog.Level
	visibilityTimeout time.Duration
	maxReceiveCount   int
	workers           int
	shutdownTimeout   time.Duration
	cpuProfile        string
	memoryLimit       int64
	backend           string
	awsPrefix         string
	initOnly          bool
	httpAllowHosts    []string
	cleanupInterval   time.Duration
	retention         time.Duration
	commandRetention  time.Duration
	indexShards       int
	instance          string
	leasePeriod       time.Duration
	// Who may call the API (nil Keys and no Issuer: nobody is asked).
	keys           *auth.Keys
	oidc           auth.OIDCConfig
	insecureNoAuth bool
	secretsDir     string
	authn          auth.Authenticator // built by run from keys and oidc
}

func parseSettings(args []string, getenv func(string) string) (settings, error) {
	var s settings
	if len(args) > 0 && args[0] == "init" {
		// "workflowd init [flags]": create the AWS resources and exit.
		s.initOnly = true
		args = args[1:]
	}
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var level, vis, shutdown, apiKeys, apiKeysFile string
	var maxRecv, nWorkers string
	fs := flag.NewFlagSet("workflowd", flag.ContinueOnError)
	fs.StringVar(&s.addr, "addr", env("WORKFLOWD_ADDR", "127.0.0.1:8080"), "listen address of the API (env WORKFLOWD_ADDR)")
	fs.StringVar(&s.dataDir, "data", env("WORKFLOWD_DATA", "./data"), "directory of the embedded store and bus (env WORKFLOWD_DATA)")
	fs.StringVar(&level, "log-level", env("WORKFLOWD_LOG_LEVEL", "info"), "debug, info, warn or error (env WORKFLOWD_LOG_LEVEL)")
	fs.StringVar(&vis, "visibility-timeout", env("WORKFLOWD_VISIBILITY_TIMEOUT", "30s"), "queue visibility timeout (env WORKFLOWD_VISIBILITY_TIMEOUT)")
	fs.StringVar(&maxRecv, "max-receive-count", env("WORKFLOWD_MAX_RECEIVE_COUNT", "5"), "receives before a message goes to the dead-letter queue (env WORKFLOWD_MAX_RECEIVE_COUNT)")
	fs.StringVar(&nWorkers, "workers", env("WORKFLOWD_WORKERS", "64"), "consuming goroutines per queue; an execution's consecutive http steps hold one (env WORKFLOWD_WORKERS)")
	fs.StringVar(&shutdown, "shutdown-timeout", env("WORKFLOWD_SHUTDOWN_TIMEOUT", "20s"), "how long a graceful shutdown may take (env WORKFLOWD_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&s.backend, "backend", env("WORKFLOWD_BACKEND", "embedded"), "embedded (one process, local store) or aws (DynamoDB, SNS, SQS) (env WORKFLOWD_BACKEND)")
	fs.StringVar(&s.awsPrefix, "aws-prefix", env("WORKFLOWD_AWS_PREFIX", "workflowd"), "name prefix of the AWS tables, topic and queues (env WORKFLOWD_AWS_PREFIX)")
	var allowHosts, cleanup, retention, commandRetention, indexShards, leasePeriod string
	fs.StringVar(&s.instance, "instance", env("WORKFLOWD_INSTANCE", ""), "aws backend: this instance's name among those of one deployment; each needs its own (default: host name and a random suffix) (env WORKFLOWD_INSTANCE)")
	fs.StringVar(&leasePeriod, "lease-period", env("WORKFLOWD_LEASE_PERIOD", "10s"), "aws backend: how long an instance's stream-shard and cleanup leases last unrenewed; a dead instance's work moves within two periods (env WORKFLOWD_LEASE_PERIOD)")
	fs.StringVar(&indexShards, "index-shards", env("WORKFLOWD_INDEX_SHARDS", "64"), "aws backend: partitions per listing key of the views table's indexes; may be raised, never lowered (env WORKFLOWD_INDEX_SHARDS)")
	fs.StringVar(&retention, "retention", env("WORKFLOWD_RETENTION", "720h"), "how long a finished execution's view is kept (its history stays); 0 for ever (env WORKFLOWD_RETENTION)")
	fs.StringVar(&commandRetention, "command-retention", env("WORKFLOWD_COMMAND_RETENTION", "168h"), "how long a command's status is kept after it was accepted (later reads answer 410); 0 for ever (env WORKFLOWD_COMMAND_RETENTION)")
	fs.StringVar(&allowHosts, "http-allow-hosts", env("WORKFLOW_HTTP_ALLOW_HOSTS", ""), "comma-separated host:port pairs http steps may call; empty: none (env WORKFLOW_HTTP_ALLOW_HOSTS)")
	fs.StringVar(&cleanup, "cleanup-interval", env("WORKFLOWD_CLEANUP_INTERVAL", "1m"), "how often the cleanup worker runs (env WORKFLOWD_CLEANUP_INTERVAL)")
	var memLimit string
	fs.StringVar(&memLimit, "memory-limit", env("WORKFLOWD_MEMORY_LIMIT", "100MiB"), "soft limit of the Go heap, e.g. 100MiB or 1GiB; 0 for none; GOMEMLIMIT wins when set (env WORKFLOWD_MEMORY_LIMIT)")
	fs.StringVar(&apiKeys, "api-keys", env("WORKFLOWD_API_KEYS", ""), "API keys, comma-separated name:scope:secret (scope read, write or admin; the secret may be given as sha256:<hex>) (env WORKFLOWD_API_KEYS)")
	fs.StringVar(&apiKeysFile, "api-keys-file", env("WORKFLOWD_API_KEYS_FILE", ""), "a file of API keys, one name:scope:secret a line, # comments (env WORKFLOWD_API_KEYS_FILE)")
	fs.StringVar(&s.oidc.Issuer, "oidc-issuer", env("WORKFLOWD_OIDC_ISSUER", ""), "accept OIDC bearer tokens (JWTs) of this issuer (env WORKFLOWD_OIDC_ISSUER)")
	fs.StringVar(&s.oidc.Audience, "oidc-audience", env("WORKFLOWD_OIDC_AUDIENCE", ""), "the audience (aud) the tokens must carry (env WORKFLOWD_OIDC_AUDIENCE)")
	fs.StringVar(&s.oidc.JWKSURL, "oidc-jwks-url", env("WORKFLOWD_OIDC_JWKS_URL", ""), "where the issuer's signing keys are; default: its discovery document's jwks_uri (env WORKFLOWD_OIDC_JWKS_URL)")
	fs.BoolVar(&s.insecureNoAuth, "insecure-no-auth", env("WORKFLOWD_INSECURE_NO_AUTH", "") == "true", "serve the API without authentication on a non-loopback address (env WORKFLOWD_INSECURE_NO_AUTH=true)")
	fs.StringVar(&s.secretsDir, "secrets-dir", env("WORKFLOWD_SECRETS_DIR", ""), "a directory of secrets, a file per name, that http steps reference as {{secret:NAME}} (beside the environment's WORKFLOWD_SECRET_<NAME>) (env WORKFLOWD_SECRETS_DIR)")
	fs.StringVar(&s.cpuProfile, "cpuprofile", env("WORKFLOWD_CPUPROFILE", ""), "write a CPU profile to this file until shutdown (env WORKFLOWD_CPUPROFILE)")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if err = s.logLevel.UnmarshalText([]byte(level)); err != nil {
		return s, fmt.Errorf("log level: %w", err)
	}
	if s.visibilityTimeout, err = positiveDuration("visibility-timeout", vis); err != nil {
		return s, err
	}
	if s.shutdownTimeout, err = positiveDuration("shutdown-timeout", shutdown); err != nil {
		return s, err
	}
	if s.maxReceiveCount, err = positiveInt("max-receive-count", maxRecv); err != nil {
		return s, err
	}
	if s.workers, err = positiveInt("workers", nWorkers); err != nil {
		return s, err
	}
	if s.memoryLimit, err = parseSize("memory-limit", memLimit); err != nil {
		return s, err
	}
	if s.httpAllowHosts, err = workers.ParseAllowHosts(allowHosts); err != nil {
		return s, fmt.Errorf("http-allow-hosts: %w", err)
	}
	if s.cleanupInterval, err = positiveDuration("cleanup-interval", cleanup); err != nil {
		return s, err
	}
	if s.indexShards, err = positiveInt("index-shards", indexShards); err != nil || s.indexShards > table.MaxIndexShards {
		return s, fmt.Errorf("index-shards: %q is not a whole number from 1 to %d", indexShards, table.MaxIndexShards)
	}
	if s.leasePeriod, err = positiveDuration("lease-period", leasePeriod); err != nil {
		return s, err
	}
	if s.leasePeriod < time.Second {
		return s, fmt.Errorf("lease-period must be at least 1s, not %q", leasePeriod)
	}
	if s.retention, err = time.ParseDuration(retention); err != nil || s.retention < 0 {
		return s, fmt.Errorf("retention: %q is not a duration of 0 or more (like 720h)", retention)
	}
	if s.commandRetention, err = time.ParseDuration(commandRetention); err != nil || s.commandRetention < 0 {
		return s, fmt.Errorf("command-retention: %q is not a duration of 0 or more (like 168h)", commandRetention)
	}
	if s.backend != "embedded" && s.backend != "aws" {
		return s, fmt.Errorf("backend must be embedded or aws, not %q", s.backend)
	}
	if s.initOnly {
		s.backend = "aws"
	}
	if s.dataDir == "" {
		return s, errors.New("data directory must not be empty")
	}
	if apiKeysFile != "" {
		b, err := os.ReadFile(apiKeysFile)
		if err != nil {
			return s, fmt.Errorf("api-keys-file: %w", err)
		}
		apiKeys += "\n" + string(b)
	}
	if s.keys, err = auth.ParseKeys(apiKeys); err != nil {
		return s, fmt.Errorf("api keys: %w", err)
	}
	if s.oidc != (auth.OIDCConfig{}) {
		if err := s.oidc.Validate(); err != nil {
			return s, err
		}
	}
	if !s.initOnly && s.keys.Len() == 0 && s.oidc.Issuer == "" && !s.insecureNoAuth && !loopback(s.addr) {
		return s, fmt.Errorf("refusing to serve the API on %s without authentication: give API keys (-api-keys or -api-keys-file; WORKFLOWD_API_KEYS, WORKFLOWD_API_KEYS_FILE) or an OIDC issuer (-oidc-issuer and -oidc-audience), or serve it open on purpose with -insecure-no-auth (docs/api.md, \"Authentication\")", s.addr)
	}
	return s, nil
}

// loopback reports whether addr (host:port) listens on a loopback address
// only: localhost, 127.0.0.0/8 or ::1 ("" or 0.0.0.0 is every interface).
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authenticator builds who may call the API from s (nil: open), reading
// the OIDC issuer's discovery document when no JWKS URL is given.
func authenticator(ctx context.Context, s settings, log *slog.Logger) (auth.Authenticator, error) {
	chain := &auth.Chain{Keys: s.keys}
	if s.oidc.Issuer != "" {
		v, err := auth.NewOIDC(ctx, s.oidc)
		if err != nil {
			return nil, err
		}
		chain.OIDC = v
	}
	if !chain.Configured() {
		if s.insecureNoAuth {
			log.Warn("the API is served without authentication (-insecure-no-auth)", "addr", s.addr)
		}
		return nil, nil
	}
	log.Info("API authentication", "keys", s.keys.Names(), "oidcIssuer", s.oidc.Issuer, "oidcAudience", s.oidc.Audience)
	return chain, nil
}

// service is what workflowd runs: the embedded runtime or the AWS one.
type service interface {
	Handler() http.Handler
	Run(ctx context.Context) error
	Close() error
}

// openService builds the configured backend; for "workflowd init" it
// creates the AWS resources, prints what it made, and returns nil.
func openService(ctx context.Context, s settings, log *slog.Logger) (service, error) {
	m := metrics.New()
	steps := app.StepsConfig{HTTPAllowHosts: s.httpAllowHosts, CleanupInterval: s.cleanupInterval, Retention: s.retention,
		CommandRetention: s.commandRetention, Secrets: secrets.Chain{secrets.Env{}, secrets.Dir(s.secretsDir)}}
	awsCfg := app.AWSConfig{
		Prefix: s.awsPrefix, VisibilityTimeout: s.visibilityTimeout, IndexShards: s.indexShards,
		Instance: s.instance, LeasePeriod: s.leasePeriod,
		MaxReceiveCount: s.maxReceiveCount, Workers: s.workers, Steps: steps, Logger: log, Auth: s.authn, Metrics: m,
	}
	switch {
	case s.initOnly:
		busCfg, err := app.InitAWS(ctx, awsCfg)
		if err != nil {
			return nil, err
		}
		fmt.Printf("tables: %s-events %s-views %s-checkpoints\ntopic: %s\n", s.awsPrefix, s.awsPrefix, s.awsPrefix, busCfg.TopicARN)
		for q, url := range busCfg.Queues {
			fmt.Printf("queue %s: %s (dead letters: %s)\n", q, url, busCfg.DeadLetterQueues[q])
		}
		return nil, nil
	case s.backend == "aws":
		return app.OpenAWS(ctx, awsCfg)
	}
	return embedded.Open(embedded.Config{
		DataDir: s.dataDir, VisibilityTimeout: s.visibilityTimeout,
		MaxReceiveCount: s.maxReceiveCount, Workers: s.workers, Steps: steps, Logger: log, Auth: s.authn, Metrics: m,
	})
}

// streamGrace is how long a shutdown lets requests finish before it ends
// the live streams.
const streamGrace = 2 * time.Second

func positiveDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s must be a positive duration like 30s, not %q", name, v)
	}
	return d, nil
}

// parseSize reads a byte count: a whole number with an optional KiB, MiB
// or GiB suffix.
func parseSize(name, v string) (int64, error) {
	mult := int64(1)
	num := v
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			num, mult = n, m
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s must be a size like 100MiB, or 0, not %q", name, v)
	}
	return n * mult, nil
}

func positiveInt(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s must be a positive whole number, not %q", name, v)
	}
	return n, nil
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	if len(args) > 0 && args[0] == "replay" {
		return runReplay(ctx, args[1:], getenv, os.Stdin, os.Stdout)
	}
	s, err := parseSettings(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: s.logLevel}))
	slog.SetDefault(log)
	if s.memoryLimit > 0 && getenv("GOMEMLIMIT") == "" {
		// The store's caches live on the Go heap: a soft limit makes the
		// collector keep the process near its working set instead of twice it.
		debug.SetMemoryLimit(s.memoryLimit)
	}
	if s.cpuProfile != "" {
		f, err := os.Create(s.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	if s.authn, err = authenticator(ctx, s, log); err != nil {
		return err
	}
	e, err := openService(ctx, s, log)
	if err != nil || e == nil {
		return err
	}
	defer func() {
		if err := e.Close(); err != nil {
			log.Error("close", "err", err)
		}
	}()

	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	// Requests run under baseCtx, which shutdown cancels after a grace that
	// ordinary requests finish in: live streams (which never finish by
	// themselves) then end instead of holding the shutdown to its timeout.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return baseCtx },
	}
	srv.RegisterOnShutdown(func() { time.AfterFunc(streamGrace, cancelBase) })

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- e.Run(runCtx) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("workflowd listening", "addr", ln.Addr().String(), "backend", s.backend, "data", s.dataDir, "awsPrefix", s.awsPrefix)

	select {
	case <-ctx.Done():
	case err := <-served:
		stopRun()
		<-ran
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("shutting down: no new requests; finishing in-flight work")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stopRun()
	select {
	case err := <-ran:
		if err != nil {
			log.Error("workers", "err", err)
		}
	case <-shutdownCtx.Done():
		log.Warn("workers did not finish in time; undeleted messages will be redelivered at the next start")
	}
	log.Info("stopped")
	return nil
}
