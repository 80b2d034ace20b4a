package main_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runner builds the local runner once per test binary.
var runner = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "devrunner-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "dev")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", errors.New("go build: " + err.Error() + ": " + string(out))
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := runner(); err == nil {
		_ = os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// command returns the runner as a process with only env (plus PATH and
// HOME) in its environment.
func command(t *testing.T, env map[string]string) *exec.Cmd {
	t.Helper()
	bin, err := runner()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// TestBadConfigurationStopsBeforeServing: with wrong settings the runner
// prints nothing on stdout (no walkthrough that looks healthy), lists every
// problem on stderr and exits with status 1.
func TestBadConfigurationStopsBeforeServing(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"settings", map[string]string{"ALLOWED_RETURN_ORIGINS": "localhost:3000", "STORE": "postgres", "SESSION_TTL": "forever"},
			[]string{`ALLOWED_RETURN_ORIGINS: origin "localhost:3000" must be scheme://host[:port]`,
				`STORE must be "firestore" or "memory", got "postgres"`, "SESSION_TTL"}},
		{"firestore without a project", map[string]string{"STORE": "firestore"},
			[]string{"STORE=firestore needs GOOGLE_CLOUD_PROJECT"}},
		{"secrets", map[string]string{"OAUTH_CLIENT_SECRET_FILE": "/nonexistent/credentials.json", "APP_KEYS_FILE": "/nonexistent/keys.json"},
			[]string{"OAUTH_CLIENT_SECRET_FILE", "/nonexistent/credentials.json", "APP_KEYS_FILE", "/nonexistent/keys.json"}},
		{"runner settings", map[string]string{"PORT": "eighty", "DEV_HOST": "http://localhost", "DEV_SYNC_EVERY": "often"},
			[]string{`PORT must be a port number, got "eighty"`, "DEV_HOST must be a host name", `DEV_SYNC_EVERY must be a duration of at least 1s (such as 30s or 5m), or off, got "often"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"PORT": "0", "DEMO_PORT": "off"}
			for k, v := range tc.env {
				env[k] = v
			}
			cmd := command(t, env)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: got %v, want status 1\nstderr:\n%s", err, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: got %q, want nothing before the configuration is fixed", stdout.String())
			}
			msg := stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr does not say %q:\n%s", w, msg)
				}
			}
			if !strings.Contains(msg, "nothing was started") {
				t.Errorf("stderr does not say that nothing was started:\n%s", msg)
			}
		})
	}
}

// started is a runner that printed its walkthrough.
type started struct {
	cmd      *exec.Cmd
	banner   string // stdout up to the end of the walkthrough
	base     string // the functions' URL
	demo     string // the demo's URL, or ""
	stderr   *syncBuffer
	finished chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var (
	baseRE = regexp.MustCompile(`gmailoauth local stack on (http://\S+)`)
	demoRE = regexp.MustCompile(`Demo frontend: (http://\S+)/ `)
)

// start runs the runner until it has printed the walkthrough (whose last
// line is the disconnect example, or the note for a real OAuth client).
func start(t *testing.T, env map[string]string, lastLine string) *started {
	t.Helper()
	cmd := command(t, env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &started{cmd: cmd, stderr: &syncBuffer{}, finished: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.finished
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
		s.finished <- cmd.Wait()
	}()
	var banner strings.Builder
	guard := time.After(2 * time.Minute) // not an assertion: only so a broken runner cannot hang the test
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the runner stopped before its walkthrough:\nstdout:\n%s\nstderr:\n%s", banner.String(), s.stderr)
			}
			banner.WriteString(l + "\n")
			if strings.Contains(l, lastLine) {
				s.banner = banner.String()
				if m := baseRE.FindStringSubmatch(s.banner); m != nil {
					s.base = m[1]
				}
				if m := demoRE.FindStringSubmatch(s.banner); m != nil {
					s.demo = m[1]
				}
				go func() {
					for range lines {
					}
				}()
				return s
			}
		case <-guard:
			t.Fatalf("no walkthrough from the runner:\nstdout so far:\n%s\nstderr:\n%s", banner.String(), s.stderr)
		}
	}
}

// interrupt sends SIGINT (Ctrl-C) and returns the exit error.
func (s *started) interrupt(t *testing.T) error {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	return <-s.finished
}

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestRunAndInterrupt: the runner serves what its walkthrough says, on
// every loopback spelling, leaves nothing in the temp directory, and Ctrl-C
// stops it with status 0.
func TestRunAndInterrupt(t *testing.T) {
	tmp := t.TempDir()
	s := start(t, map[string]string{"PORT": "0", "DEMO_PORT": "0", "TMPDIR": tmp}, "# 5. Disconnect")
	if s.base == "" || s.demo == "" {
		t.Fatalf("walkthrough without the stack's and the demo's URLs:\n%s", s.banner)
	}
	if !strings.Contains(s.banner, "Store          memory") {
		t.Errorf("walkthrough does not state the memory store:\n%s", s.banner)
	}

	// The sandbox URL of the walkthrough answers with its endpoints and
	// admin API, every path as it must be typed.
	resp, body := get(t, s.base+"/sandbox/", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, s.base+"/sandbox/token") ||
		!strings.Contains(body, "/sandbox/admin/users/{email}/knobs") {
		t.Errorf("GET %s/sandbox/: %d\n%s", s.base, resp.StatusCode, body)
	}
	resp, body = get(t, s.base+"/sandbox/admin", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "GET      /sandbox/admin/users/{email}  ") {
		t.Errorf("GET %s/sandbox/admin: %d, want every path with its /sandbox prefix:\n%s", s.base, resp.StatusCode, body)
	}

	// The demo's origin is allowed in each loopback spelling, and the
	// runner answers on each of them.
	port := s.demo[strings.LastIndex(s.demo, ":")+1:]
	for _, origin := range []string{s.demo, "http://127.0.0.1:" + port, "http://[::1]:" + port} {
		req, _ := http.NewRequest(http.MethodOptions, strings.Replace(s.base, "localhost", "127.0.0.1", 1)+"/authorize", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("preflight from %s: got %d ACAO=%q, want 204 for the runner's own origin", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	if resp, _ := get(t, "http://127.0.0.1:"+port+"/", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the demo at 127.0.0.1: %d", resp.StatusCode)
	}
	// A request line per request, with its method, path and status.
	resp, _ = get(t, s.base+"/list-messages?max_results=1", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("list without a session: %d, want 401", resp.StatusCode)
	}

	if err := s.interrupt(t); err != nil {
		t.Errorf("after Ctrl-C: %v, want exit status 0\nstderr:\n%s", err, s.stderr)
	}
	logs := s.stderr.String()
	if !strings.Contains(logs, `"message":"GET /list-messages 401 missing_session"`) || !strings.Contains(logs, `"requestUrl":"/list-messages"`) {
		t.Errorf("no request line for GET /list-messages:\n%s", logs)
	}
	if !strings.Contains(logs, "dev: stopped") {
		t.Errorf("stderr does not say the runner stopped:\n%s", logs)
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		t.Errorf("the runner left %s in the temp directory", e.Name())
	}
}

// TestRedirectURLWarning: with a real OAuth client whose redirect_uris do
// not include OAUTH_REDIRECT_URL, the walkthrough warns (real Google would
// answer redirect_uri_mismatch). The app keyset goes to DEV_STATE_DIR.
func TestRedirectURLWarning(t *testing.T) {
	dir := t.TempDir()
	client := filepath.Join(dir, "credentials.json")
	const js = `{"web":{"client_id":"1234-test.apps.googleusercontent.com","client_secret":"fake-client-secret-for-tests",` +
		`"redirect_uris":["https://fn.example.com/callback"],"auth_uri":"https://accounts.google.com/o/oauth2/auth","token_uri":"https://oauth2.googleapis.com/token"}}`
	if err := os.WriteFile(client, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	s := start(t, map[string]string{"PORT": "0", "DEMO_PORT": "off", "OAUTH_CLIENT_SECRET_FILE": client, "DEV_STATE_DIR": state},
		"authorize?login_hint=")
	if !strings.Contains(s.banner, "WARNING: OAUTH_REDIRECT_URL is not one of the OAuth client's redirect_uris") ||
		!strings.Contains(s.banner, s.base+"/callback") || !strings.Contains(s.banner, "https://fn.example.com/callback") {
		t.Errorf("walkthrough without the redirect_uri warning:\n%s", s.banner)
	}
	if strings.Contains(s.banner, "fake-client-secret") || strings.Contains(s.stderr.String(), "fake-client-secret") {
		t.Errorf("the client secret was printed")
	}
	if err := s.interrupt(t); err != nil {
		t.Errorf("after Ctrl-C: %v, want exit status 0", err)
	}
	if fi, err := os.Stat(filepath.Join(state, "app-keys.json")); err != nil {
		t.Errorf("DEV_STATE_DIR/app-keys.json: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("DEV_STATE_DIR/app-keys.json: mode %v, want 0600 (only its owner reads it)", fi.Mode().Perm())
	}
}
