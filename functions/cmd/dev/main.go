// Command dev runs the local stack: Authorize, OAuthCallback and ListMessages
// on one port (PORT, default 8080) and, unless a real OAuth client is
// configured, the sandbox standing in for Google. The demo frontend listens
// on a second port (DEMO_PORT, default PORT+1; "off" disables it), a
// different origin, so it calls the functions cross-origin like a deployed
// frontend. `make dev` runs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"example.com/gmailoauth/internal/local/devserver"
	"example.com/gmailoauth/internal/logging"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run() error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	host := os.Getenv("DEV_HOST")
	if host == "" {
		host = "localhost"
	}
	lis, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return fmt.Errorf("listen on port %s: %w (set PORT to use another)", port, err)
	}
	demoPort := os.Getenv("DEMO_PORT")
	if demoPort == "" {
		n, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("PORT %q is not a number", port)
		}
		demoPort = strconv.Itoa(n + 1)
	}
	var demoLis net.Listener
	demoBase := ""
	if demoPort != "off" {
		if demoLis, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", demoPort)); err != nil {
			lis.Close()
			return fmt.Errorf("listen on port %s for the demo frontend: %w (set DEMO_PORT to use another, or DEMO_PORT=off)", demoPort, err)
		}
		demoBase = "http://" + net.JoinHostPort(host, demoPort)
	}
	log := logging.New(os.Stderr, os.Getenv("GOOGLE_CLOUD_PROJECT"), slog.LevelInfo)
	srv, err := devserver.New(devserver.Options{
		BaseURL: "http://" + net.JoinHostPort(host, port), DemoBaseURL: demoBase,
		Logger: log, StateDir: os.Getenv("DEV_STATE_DIR"),
	})
	if err != nil {
		return err
	}
	fmt.Println(srv.Walkthrough())
	servers := []*http.Server{{Handler: srv.Handler, ReadHeaderTimeout: 10 * time.Second}}
	listeners := []net.Listener{lis}
	if demoLis != nil {
		servers = append(servers, &http.Server{Handler: srv.DemoHandler, ReadHeaderTimeout: 10 * time.Second})
		listeners = append(listeners, demoLis)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, len(servers))
	for i, hs := range servers {
		go func() { errc <- hs.Serve(listeners[i]) }()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, hs := range servers {
		_ = hs.Shutdown(sctx)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}
