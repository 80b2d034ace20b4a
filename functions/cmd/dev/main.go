// Command dev runs the local stack: Authorize, OAuthCallback and ListMessages
// on one port (PORT, default 8080) and, unless a real OAuth client is
// configured, the sandbox standing in for Google. The demo frontend listens
// on a second port (DEMO_PORT, default PORT+1; "off" disables it), a
// different origin, so it calls the functions cross-origin like a deployed
// frontend. Every connected mailbox is synced every DEV_SYNC_EVERY (default
// 30s; "off" disables it), as Cloud Scheduler does when deployed, so that
// listings come from the mirror after a user's first sync. `make dev` runs
// it.
//
// It checks the whole configuration (the same config.Load and app.Build the
// deployed functions run at their first request) before it prints anything:
// on a problem it lists every one on stderr and exits with status 1, serving
// nothing. It listens on the loopback addresses only (127.0.0.1 and, when
// available, [::1]); DEV_HOST (default localhost) is the host name in the
// URLs it prints and configures. Ctrl-C (SIGINT) or SIGTERM stops it with
// status 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"example.com/gmailoauth/internal/local/devserver"
	"example.com/gmailoauth/internal/logging"
	"example.com/gmailoauth/internal/weburl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// checkTimeout bounds the configuration check (secret reads, the store's
// client), as the deployed setup is bounded.
const checkTimeout = time.Minute

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// settings are the runner's own variables, apart from the functions'
// configuration.
type settings struct {
	host      string
	port      int
	demoPort  int           // -1: no demo
	syncEvery time.Duration // 0: no local sweeps
}

// readSettings reads PORT, DEMO_PORT, DEV_HOST and DEV_SYNC_EVERY, listing
// every problem.
func readSettings(getenv func(string) string) (settings, []string) {
	var problems []string
	s := settings{host: getenv("DEV_HOST"), port: 8080, syncEvery: 30 * time.Second}
	switch v := getenv("DEV_SYNC_EVERY"); v {
	case "":
	case "off":
		s.syncEvery = 0
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			problems = append(problems, fmt.Sprintf("DEV_SYNC_EVERY must be a duration of at least 1s (such as 30s or 5m), or off, got %q", v))
		}
		s.syncEvery = d
	}
	if s.host == "" {
		s.host = "localhost"
	} else if !hostRE.MatchString(s.host) && net.ParseIP(s.host) == nil {
		problems = append(problems, fmt.Sprintf("DEV_HOST must be a host name such as localhost or 127.0.0.1, got %q", s.host))
	}
	port := func(key, v string) int {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			problems = append(problems, fmt.Sprintf("%s must be a port number, got %q", key, v))
			return 0
		}
		return n
	}
	if v := getenv("PORT"); v != "" {
		s.port = port("PORT", v)
	}
	switch v := getenv("DEMO_PORT"); v {
	case "off":
		s.demoPort = -1
	case "":
		s.demoPort = s.port + 1
		if s.port == 0 {
			s.demoPort = 0 // any free port, like PORT
		}
	default:
		s.demoPort = port("DEMO_PORT", v)
	}
	return s, problems
}

// listener is a port on the loopback addresses: 127.0.0.1 and, when the
// machine has IPv6, [::1] on the same port, so every loopback spelling of
// the runner's URLs (localhost, 127.0.0.1, [::1]) reaches it.
type listener struct {
	port int
	ls   []net.Listener
}

func listenLoopback(port int) (*listener, error) {
	v4, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	l := &listener{port: v4.Addr().(*net.TCPAddr).Port, ls: []net.Listener{v4}}
	if v6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(l.port))); err == nil {
		l.ls = append(l.ls, v6)
	}
	return l, nil
}

func (l *listener) close() {
	for _, x := range l.ls {
		_ = x.Close()
	}
}

func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) int {
	fail := func(what string, problems []string) int {
		fmt.Fprintf(stderr, "dev: %s:\n", what)
		for _, p := range problems {
			fmt.Fprintf(stderr, "  - %s\n", p)
		}
		fmt.Fprintln(stderr, "dev: nothing was started. The README's Configuration section lists every setting.")
		return 1
	}
	set, problems := readSettings(getenv)
	if len(problems) > 0 {
		return fail("the runner's settings have problems", problems)
	}
	api, err := listenLoopback(set.port)
	if err != nil {
		return fail("cannot listen", []string{fmt.Sprintf("port %d: %v (set PORT to use another)", set.port, err)})
	}
	defer api.close()
	var demo *listener
	demoBase := ""
	if set.demoPort >= 0 {
		if demo, err = listenLoopback(set.demoPort); err != nil {
			return fail("cannot listen", []string{fmt.Sprintf("port %d for the demo frontend: %v (set DEMO_PORT to use another, or DEMO_PORT=off)", set.demoPort, err)})
		}
		defer demo.close()
		demoBase = "http://" + net.JoinHostPort(set.host, strconv.Itoa(demo.port))
	}
	log := logging.New(stderr, getenv("GOOGLE_CLOUD_PROJECT"), slog.LevelInfo)
	base := "http://" + net.JoinHostPort(set.host, strconv.Itoa(api.port))
	srv, err := devserver.New(devserver.Options{
		BaseURL: base, DemoBaseURL: demoBase, Getenv: getenv,
		Logger: log, StateDir: getenv("DEV_STATE_DIR"),
	})
	if err != nil {
		return fail("cannot start", []string{err.Error()})
	}
	defer srv.Close()
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	err = srv.Check(cctx)
	cancel()
	if err != nil {
		return fail("the configuration has problems", devserver.Problems(err))
	}
	if !weburl.IsLoopback(set.host) {
		fmt.Fprintf(stdout, "Note: DEV_HOST=%s, but the runner listens on the loopback addresses only.\n\n", set.host)
	}
	fmt.Fprintln(stdout, srv.Walkthrough())
	if set.syncEvery > 0 {
		fmt.Fprintf(stdout, "Syncing every connected mailbox every %s (DEV_SYNC_EVERY), as Cloud Scheduler does: after a user's first sync, listings come from the mirror.\n\n", set.syncEvery)
		go srv.SweepEvery(ctx, set.syncEvery, log)
	}

	var servers []*http.Server
	errc := make(chan error, 4)
	serve := func(h http.Handler, l *listener) {
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, hs)
		for _, x := range l.ls {
			go func() { errc <- hs.Serve(x) }()
		}
	}
	serve(srv.Handler, api)
	if demo != nil {
		serve(srv.DemoHandler, demo)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	for _, hs := range servers {
		_ = hs.Shutdown(sctx)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "dev:", serveErr)
		return 1
	}
	fmt.Fprintln(stderr, "dev: stopped")
	return 0
}
