// Package pubsubtest gives tests topics and subscriptions on Google's Pub/Sub
// emulator, each test in a project of its own (the emulator accepts any
// project id), so tests can run in parallel without seeing each other's
// messages.
//
// The emulator's address comes from PUBSUB_EMULATOR_HOST (`make test` starts
// one with .ci/pubsub-emulator). When it is unset, tests fail if CI is true
// (a CI that cannot start the emulator must not pass silently) and are
// skipped otherwise. Private starts an emulator of the test's own, which the
// test may stop and start again (fault tests).
package pubsubtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/gmailoauth/internal/pubsub"
)

// EnvHost is the variable the Pub/Sub client library reads the emulator's
// host:port from.
const EnvHost = "PUBSUB_EMULATOR_HOST"

const howToRun = "PUBSUB_EMULATOR_HOST is not set: Pub/Sub tests need the emulator. " +
	"Run `make test`, or start one with `.ci/pubsub-emulator start` and export the " +
	"PUBSUB_EMULATOR_HOST=127.0.0.1:PORT line it prints (stop it with `.ci/pubsub-emulator stop`)"

var (
	probeOnce sync.Once
	probeErr  error
)

// required fails t when CI is true and skips it otherwise; under -short it
// always skips.
func required(t testing.TB, why string) {
	t.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(why + " (CI=true: failing rather than skipping)")
	}
	t.Skip(why)
}

// EmulatorHost returns the emulator's host:port. Without PUBSUB_EMULATOR_HOST
// it fails t when CI is true and skips t otherwise; when the emulator does
// not answer, it fails t. Under -short it always skips.
func EmulatorHost(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Pub/Sub emulator; skipped under -short")
	}
	host := os.Getenv(EnvHost)
	if host == "" {
		required(t, howToRun)
	}
	probeOnce.Do(func() { probeErr = probe(host) })
	if probeErr != nil {
		t.Fatalf("Pub/Sub emulator at %s=%s does not answer: %v", EnvHost, host, probeErr)
	}
	return host
}

// probe checks that the emulator answers GET / with 200.
func probe(host string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET / answered %s", resp.Status)
	}
	return nil
}

// NewProject returns a project id no other test uses; its topics and
// subscriptions are seen by nobody else.
func NewProject(t testing.TB) string {
	t.Helper()
	EmulatorHost(t)
	return uniqueProject()
}

func uniqueProject() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "demo-test-" + hex.EncodeToString(b)
}

// NewClient returns an adapter client for project on the emulator named by
// opts.EmulatorHost (PUBSUB_EMULATOR_HOST when empty), closed when t ends.
func NewClient(t testing.TB, project string, opts pubsub.Options) *pubsub.Client {
	t.Helper()
	c, err := pubsub.New(context.Background(), project, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Topic creates projects/project/topics/id and returns its full name.
func Topic(t testing.TB, c *pubsub.Client, project, id string) string {
	t.Helper()
	name := "projects/" + project + "/topics/" + id
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.EnsureTopic(ctx, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// PullSubscription creates an ordered pull subscription on topic and returns
// its full name.
func PullSubscription(t testing.TB, c *pubsub.Client, topic, id string) string {
	t.Helper()
	project, _, err := pubsub.ParseTopic(topic)
	if err != nil {
		t.Fatal(err)
	}
	name := "projects/" + project + "/subscriptions/" + id
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.EnsureSubscription(ctx, pubsub.Subscription{Name: name, Topic: topic, Ordered: true, AckDeadline: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	return name
}

// Collector receives a pull subscription's messages in the background
// until the test ends.
type Collector struct {
	mu   sync.Mutex
	got  []pubsub.Received
	cond chan struct{} // closed and replaced on every message
}

// Collect starts receiving from sub (acknowledging everything).
func Collect(t testing.TB, c *pubsub.Client, sub string) *Collector {
	t.Helper()
	col := &Collector{cond: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Receive(ctx, sub, func(_ context.Context, m pubsub.Received) bool {
			col.mu.Lock()
			col.got = append(col.got, m)
			close(col.cond)
			col.cond = make(chan struct{})
			col.mu.Unlock()
			return true
		})
	}()
	t.Cleanup(func() {
		cancel()
		// Receive may not return while the emulator is down (fault tests).
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Logf("pubsubtest: the receiver of %s did not stop within 10s; left behind", sub)
		}
	})
	return col
}

// Messages returns what was received so far, in arrival order.
func (col *Collector) Messages() []pubsub.Received {
	col.mu.Lock()
	defer col.mu.Unlock()
	return append([]pubsub.Received(nil), col.got...)
}

// WaitFor waits until ok holds for the messages received so far, or fails
// t after timeout, saying what arrived.
func (col *Collector) WaitFor(t testing.TB, timeout time.Duration, what string, ok func([]pubsub.Received) bool) []pubsub.Received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		col.mu.Lock()
		got := append([]pubsub.Received(nil), col.got...)
		ch := col.cond
		col.mu.Unlock()
		if ok(got) {
			return got
		}
		select {
		case <-ch:
		case <-deadline.C:
			var b strings.Builder
			for _, m := range got {
				fmt.Fprintf(&b, "\n  %s %s", m.Attributes["type"], m.Data)
			}
			t.Fatalf("waited %s for %s; received %d message(s):%s", timeout, what, len(got), b.String())
		}
	}
}

// Emulator is an emulator of a test's own (Private).
type Emulator struct {
	t      testing.TB
	dir    string
	script string
	port   string
}

// Private starts an emulator of t's own through .ci/pubsub-emulator, on a
// fixed free port so that Stop and Start keep its address, and stops it
// when t ends. It fails t under CI=true when the emulator cannot run, and
// skips it otherwise.
func Private(t testing.TB) *Emulator {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the Pub/Sub emulator; skipped under -short")
	}
	script, err := findScript()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("java"); err != nil {
		required(t, "java is not installed: the Pub/Sub emulator cannot run")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	e := &Emulator{t: t, dir: t.TempDir(), script: script, port: port}
	e.Start()
	t.Cleanup(e.Stop)
	return e
}

// Host is the emulator's host:port (the same after a restart).
func (e *Emulator) Host() string { return "127.0.0.1:" + e.port }

// Start starts the emulator (again). Its state starts empty.
func (e *Emulator) Start() {
	e.t.Helper()
	cmd := exec.Command(e.script, "start")
	cmd.Env = append(os.Environ(), "EMULATOR_DIR="+e.dir, "PUBSUB_EMULATOR_PORT="+e.port)
	if out, err := cmd.CombinedOutput(); err != nil {
		required(e.t, fmt.Sprintf("the Pub/Sub emulator did not start: %v\n%s", err, out))
	}
}

// Stop stops the emulator; clients see it as unreachable.
func (e *Emulator) Stop() {
	cmd := exec.Command(e.script, "stop")
	cmd.Env = append(os.Environ(), "EMULATOR_DIR="+e.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Logf("pubsub-emulator stop: %v\n%s", err, out)
	}
}

// findScript finds .ci/pubsub-emulator above the working directory (a
// test runs in its package's directory).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, ".ci", "pubsub-emulator")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("pubsubtest: .ci/pubsub-emulator not found above the working directory")
		}
		dir = parent
	}
}
