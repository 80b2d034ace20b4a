// Command dev runs the local stack: Authorize, OAuthCallback and ListMessages
// on one port (PORT, default 8080) and, unless a real OAuth client is
// configured, the sandbox standing in for Google. `make dev` runs it.
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
	"syscall"
	"time"

	"example.com/gmailoauth/internal/devserver"
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
	log := logging.New(os.Stderr, os.Getenv("GOOGLE_CLOUD_PROJECT"), slog.LevelInfo)
	srv, err := devserver.New(devserver.Options{BaseURL: "http://" + net.JoinHostPort(host, port), Logger: log, StateDir: os.Getenv("DEV_STATE_DIR")})
	if err != nil {
		return err
	}
	fmt.Println(srv.Walkthrough())
	hs := &http.Server{Handler: srv.Handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
