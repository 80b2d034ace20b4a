package functions_test

// This test builds each Cloud Function the way Google Cloud builds it.
//
// Terraform (terraform/functions.tf) zips each function from the rules in
// terraform/functions.json: go.mod, go.sum, functions/<name>/*.go moved to the
// zip root, and the files of the packages the function lists (its "packages":
// package directories such as internal/app, without _test.go files, testdata/
// directories or subdirectories that are packages of their own).
// TestFunctionPackagesMatchImports keeps each list equal to what `go list
// -deps` says the function imports, so local-only code (internal/local/...),
// test helpers (storetest, smtest, fstest) and tools (internal/apidoc) are not
// deployed. This test reads the same rules file, assembles the same file list,
// writes the zip, unpacks it and then does what the Go functions buildpack
// (GoogleCloudPlatform/buildpacks, cmd/go/functions_framework) does with an
// uploaded source:
//
//   - parses the .go files at the source root and fails on a second package
//     name (a _test package included);
//   - needs go.mod (module path with a dot in its first element);
//   - writes functions.local/app/main.go from its "declarative" template
//     (used when the package imports .../functions-framework-go/functions): a
//     main that blank-imports the module root package and calls
//     funcframework.Start;
//   - runs go mod tidy (with network access), then a plain go build of that
//     main package in read-only module mode, from an empty module cache.
//
// The build does the same: one fresh GOMODCACHE per test run (shared by the
// functions, removed afterwards), GOFLAGS cleared and the user's go env file
// ignored (GOENV=off; the proxy and checksum settings are passed on), go mod
// tidy, then go build -mod=readonly. So a deployment cannot lean on a module
// that is only in this machine's cache, on a flag such as -mod=mod, or on a
// go.sum line the repository lacks.
//
// go.sum: the repository's go.sum must already hold every line the
// buildpack's go mod tidy needs for the generated main; the test fails, naming
// the lines, when tidy adds one. (It may drop lines: modules only the tests
// use.) Otherwise the cloud build would fetch those modules with checksums
// the repository never recorded, and what is deployed would not be what was
// reviewed and tested here. The generated main imports funcframework, which
// nothing in the repository's own code does, and funcframework needs modules
// (cloud.google.com/go/functions) the code does not; the blank import of
// funcframework below makes the repository's own go mod tidy keep their
// go.mod and go.sum lines, so "go mod tidy" in the repository is the fix when
// the test names missing lines. Comparing the whole go.sum for equality
// instead would need a go.sum per function, as each zip's tidy drops a
// different set of test-only modules.
//
// The binary is then started with FUNCTION_TARGET set to the entry point and a
// deliberately empty configuration: the registered function must answer, with
// the app's 500 {"error":{"code":"misconfigured"}}. A CloudEvent function
// (trigger pubsub) gets a raw Pub/Sub push request, which the framework turns
// into the CloudEvent Eventarc sends: the function answers 500 (its error:
// the instance is misconfigured, so Pub/Sub would retry), and a body that is
// not a Pub/Sub message answers 400 from the framework itself. An unknown
// FUNCTION_TARGET must make it exit, which proves the entry point is the
// registered name.
//
// .ci/tf-check also runs TestZipManifestMatchesTerraform with the file lists
// OpenTofu computed, so the Go and Terraform implementations of the rules
// provably agree on the real tree.

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	// The buildpack's generated main imports funcframework; importing it here
	// keeps its modules in go.mod and go.sum (see the comment above).
	_ "github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

// zipRules mirrors terraform/functions.json.
type zipRules struct {
	Comment         string              `json:"//"`
	RootFiles       []string            `json:"root_files"`
	ExcludeSuffixes []string            `json:"exclude_suffixes"`
	ExcludeDirs     []string            `json:"exclude_dirs"`
	Functions       map[string]function `json:"functions"`
}

// function is one entry of functions.json's "functions".
type function struct {
	Dir        string   `json:"dir"`         // the function package, e.g. functions/authorize
	EntryPoint string   `json:"entry_point"` // the name registered with functions.HTTP or functions.CloudEvent
	Name       string   `json:"name"`        // deployed as <name_prefix>-<name>
	Trigger    string   `json:"trigger"`     // "http" (default) or "pubsub" (a CloudEvent function)
	Packages   []string `json:"packages"`    // package directories it imports, e.g. internal/app
}

// sortedKeys returns the function keys of r in order.
func (r zipRules) sortedKeys() []string {
	keys := make([]string, 0, len(r.Functions))
	for k := range r.Functions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func loadRules(t *testing.T, root string) zipRules {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "terraform", "functions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r zipRules
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("terraform/functions.json: %v", err)
	}
	if len(r.Functions) == 0 {
		t.Fatal("terraform/functions.json lists no functions")
	}
	return r
}

func (r zipRules) excludedName(name string) bool {
	for _, s := range r.ExcludeSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

func (r zipRules) excludedDir(rel string) bool {
	for _, part := range strings.Split(path.Dir(rel), "/") {
		for _, d := range r.ExcludeDirs {
			if part == d {
				return true
			}
		}
	}
	return false
}

// manifest returns zip path -> repository-relative source path for one
// function, by the same rules as local.function_sources in functions.tf.
func manifest(root string, r zipRules, fn function) (map[string]string, error) {
	m := map[string]string{}
	for _, f := range r.RootFiles {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			return nil, fmt.Errorf("root file: %w", err)
		}
		m[f] = f
	}
	for _, pkg := range fn.Packages {
		files, err := packageFiles(root, r, pkg)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			m[f] = f
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, fn.Dir))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".go") || r.excludedName(e.Name()) {
			continue
		}
		m[e.Name()] = fn.Dir + "/" + e.Name()
	}
	return m, nil
}

// packageFiles returns the repository-relative files of the package in
// directory pkg: every file at or below it, minus excluded names (_test.go),
// anything inside an excluded directory (testdata/) and anything at or below
// a subdirectory holding .go files, which is another package. What remains
// below pkg is its embedded assets.
func packageFiles(root string, r zipRules, pkg string) ([]string, error) {
	var all []string
	goDirs := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(root, filepath.FromSlash(pkg)), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if r.excludedDir(rel) {
			return nil
		}
		if strings.HasSuffix(rel, ".go") {
			goDirs[path.Dir(rel)] = true
		}
		if !r.excludedName(rel) {
			all = append(all, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", pkg, err)
	}
	var files []string
next:
	for _, f := range all {
		for dir := path.Dir(f); dir != pkg && strings.HasPrefix(dir, pkg+"/"); dir = path.Dir(dir) {
			if goDirs[dir] {
				continue next // another package's file
			}
		}
		files = append(files, f)
	}
	return files, nil
}

// writeZip writes the files of m into a zip, in sorted order like the archive
// provider does.
func writeZip(root string, m map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range sortedNames(m) {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(m[n])))
		if err != nil {
			return nil, err
		}
		w, err := zw.Create(n)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func unzip(data []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	for _, f := range zr.File {
		dst := filepath.Join(dir, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(dst, filepath.Clean(dir)+string(os.PathSeparator)) {
			return fmt.Errorf("zip entry escapes the directory: %s", f.Name)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		// Writable, like an uploaded source: the buildpack edits go.mod.
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

const functionsPackage = "github.com/GoogleCloudPlatform/functions-framework-go/functions"

// rootPackage is what the buildpack learns about the uploaded source.
type rootPackage struct {
	Module  string // from go.mod
	Name    string // package name at the root
	Imports map[string]bool
}

// checkBuildpackRoot applies the buildpack's rules to an unpacked source.
func checkBuildpackRoot(dir string) (*rootPackage, error) {
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return nil, fmt.Errorf("go.mod missing at the source root: %w", err)
	}
	pkg := &rootPackage{Imports: map[string]bool{}}
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			pkg.Module = strings.Trim(f[1], `"`)
			break
		}
	}
	if pkg.Module == "" {
		return nil, errors.New("go.mod has no module line")
	}
	if first := strings.Split(pkg.Module, "/")[0]; !strings.Contains(first, ".") {
		return nil, fmt.Errorf("module path %q needs a dot in its first element (e.g. example.com/module)", pkg.Module)
	}
	goFiles, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	if len(goFiles) == 0 {
		return nil, errors.New("no .go files at the source root: the function package must be at the zip root")
	}
	fset := token.NewFileSet()
	for _, f := range goFiles {
		if strings.HasSuffix(f, "_test.go") {
			return nil, fmt.Errorf("%s: test files must not be deployed (the buildpack parses them as part of the root package)", filepath.Base(f))
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			return nil, err
		}
		if pkg.Name == "" {
			pkg.Name = af.Name.Name
		} else if af.Name.Name != pkg.Name {
			return nil, fmt.Errorf("two package names at the source root: %s and %s (%s)", pkg.Name, af.Name.Name, filepath.Base(f))
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			pkg.Imports[p] = true
		}
	}
	if pkg.Name == "main" {
		return nil, errors.New("the root package is main; the buildpack generates main itself")
	}
	if !pkg.Imports[functionsPackage] {
		return nil, fmt.Errorf("the root package does not import %s: it must register its function with functions.HTTP or functions.CloudEvent", functionsPackage)
	}
	return pkg, nil
}

// mainTemplate is the buildpack's declarative template (used when the function
// package imports the functions package).
var mainTemplate = template.Must(template.New("main").Parse(`// Binary main file implements an HTTP server that loads and runs user's code
// on incoming HTTP requests.
package main

import (
	"log"
	"net/http"
	"os"

	_ "{{.Package}}"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

func main() {
	http.HandleFunc("/robots.txt", http.NotFound)
	http.HandleFunc("/favicon.ico", http.NotFound)

	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("Function failed to start: %v\n", err)
	}
}
`))

// buildLikeBuildpack writes the generated main into dir and builds it with
// env (buildpackEnv): go mod tidy, then go build -mod=readonly. It fails when
// tidy had to add lines to the zip's go.sum.
func buildLikeBuildpack(t *testing.T, dir string, pkg *rootPackage, env []string) string {
	t.Helper()
	// The buildpack imports <module>/<package name> when a directory of that
	// name exists at the root, else the module root package.
	importPath := pkg.Module
	if st, err := os.Stat(filepath.Join(dir, pkg.Name)); err == nil && st.IsDir() {
		importPath = pkg.Module + "/" + pkg.Name
	}
	mainDir := filepath.Join(dir, "functions.local", "app")
	if err := os.MkdirAll(mainDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var src bytes.Buffer
	if err := mainTemplate.Execute(&src, map[string]string{"Package": importPath}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mainDir, "main.go"), src.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	zipSum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "function")
	for _, args := range [][]string{
		{"go", "mod", "tidy"},
		{"go", "build", "-mod=readonly", "-trimpath", "-o", bin, "./functions.local/app"},
	} {
		start := time.Now()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("%s: %v", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
		if args[1] == "mod" {
			tidySum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
			if err != nil {
				t.Fatal(err)
			}
			if added := addedLines(zipSum, tidySum); len(added) > 0 {
				t.Fatalf("the buildpack's go mod tidy adds %d line(s) to the go.sum of the zip; the repository's go.sum must already hold them, "+
					"or the cloud build fetches modules with checksums the repository never recorded (run go mod tidy in the repository; "+
					"a package the generated main needs that the repository does not import goes into this file's blank imports):\n  %s",
					len(added), strings.Join(added, "\n  "))
			}
		}
	}
	return bin
}

// addedLines returns the non-empty lines of after that before lacks.
func addedLines(before, after []byte) []string {
	have := map[string]bool{}
	for _, l := range strings.Split(string(before), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	var added []string
	for _, l := range strings.Split(string(after), "\n") {
		if l = strings.TrimSpace(l); l != "" && !have[l] {
			added = append(added, l)
		}
	}
	return added
}

// buildpackEnv is the environment of the buildpack-like build: this process's
// environment without any Go setting that could make the build depend on this
// machine (GOFLAGS, the user's go env file, a workspace, the module cache),
// plus the module proxy and checksum settings as this machine resolves them
// (the cloud build has network access to the proxy) and modCache as an empty
// module cache of its own.
func buildpackEnv(t *testing.T, modCache string) []string {
	t.Helper()
	passed := []string{"GOPROXY", "GOSUMDB", "GONOSUMDB", "GONOPROXY", "GOPRIVATE", "GOINSECURE", "GOTOOLCHAIN", "GOCACHE"}
	out, err := exec.Command("go", append([]string{"env", "-json"}, passed...)...).Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	var values map[string]string
	if err := json.Unmarshal(out, &values); err != nil {
		t.Fatalf("go env -json: %v", err)
	}
	dropped := map[string]bool{"GOFLAGS": true, "GOENV": true, "GOMODCACHE": true, "GOWORK": true, "CGO_ENABLED": true}
	for _, k := range passed {
		dropped[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !dropped[k] {
			env = append(env, kv)
		}
	}
	for _, k := range passed {
		if v := values[k]; v != "" {
			env = append(env, k+"="+v)
		}
	}
	return append(env, "GOENV=off", "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0", "GOMODCACHE="+modCache)
}

// freshModCache makes an empty module cache for this test run and removes it
// when t ends. Module cache files are read-only, so it is removed with go
// clean -modcache (and made writable first if anything is left).
func freshModCache(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gmailoauth-modcache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd := exec.Command("go", "clean", "-modcache")
		cmd.Env = append(os.Environ(), "GOENV=off", "GOFLAGS=", "GOMODCACHE="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("go clean -modcache: %v\n%s", err, out)
		}
		if err := os.RemoveAll(dir); err != nil {
			_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					_ = os.Chmod(p, 0o755)
				}
				return nil
			})
			if err := os.RemoveAll(dir); err != nil {
				t.Errorf("removing the test's module cache %s: %v", dir, err)
			}
		}
	})
	return dir
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// runFunction starts bin like Cloud Run starts a function: FUNCTION_TARGET and
// PORT, and (deliberately) none of the app's configuration.
// exited is closed when the process ends; err is its Wait result.
type process struct {
	exited chan struct{}
	err    error
}

func runFunction(t *testing.T, bin, target string) (baseURL string, p *process) {
	t.Helper()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"FUNCTION_TARGET=" + target, "PORT=" + port, "HOME=" + t.TempDir()}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p = &process{exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cancel()
		<-p.exited
		if t.Failed() {
			t.Logf("function output:\n%s", logs.String())
		}
	})
	return "http://127.0.0.1:" + port, p
}

func TestFunctionZipsBuildAndServeLikeTheBuildpack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function, downloading its modules into an empty module cache")
	}
	root := repoRoot(t)
	rules := loadRules(t, root)
	start := time.Now()
	env := buildpackEnv(t, freshModCache(t)) // one empty module cache, shared by the functions
	for _, key := range rules.sortedKeys() {
		fn := rules.Functions[key]
		t.Run(key, func(t *testing.T) {
			m, err := manifest(root, rules, fn)
			if err != nil {
				t.Fatal(err)
			}
			data, err := writeZip(root, m)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := unzip(data, dir); err != nil {
				t.Fatal(err)
			}
			pkg, err := checkBuildpackRoot(dir)
			if err != nil {
				t.Fatalf("zip of %s is not a valid buildpack source: %v", fn.Dir, err)
			}
			if pkg.Module != "example.com/gmailoauth" {
				t.Errorf("module = %q", pkg.Module)
			}
			// Nothing but the rules' files reached the zip.
			for name := range m {
				if strings.HasPrefix(name, "functions/") || strings.HasSuffix(name, "_test.go") || strings.Contains(name, "testdata/") {
					t.Errorf("zip holds %s", name)
				}
			}
			for _, f := range []string{"go.mod", "go.sum"} {
				if _, ok := m[f]; !ok {
					t.Errorf("zip lacks %s", f)
				}
			}

			bin := buildLikeBuildpack(t, dir, pkg, env)

			// The registered function answers; empty configuration -> 500 misconfigured.
			base, proc := runFunction(t, bin, fn.EntryPoint)
			if fn.Trigger == "pubsub" {
				checkCloudEventFunction(t, base, proc, fn.EntryPoint)
			} else {
				resp := waitForAnswer(t, base+"/", proc)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var e struct {
					Error struct {
						Code string `json:"code"`
					} `json:"error"`
				}
				if resp.StatusCode != http.StatusInternalServerError || json.Unmarshal(body, &e) != nil || e.Error.Code != "misconfigured" {
					t.Fatalf("%s with an empty configuration answered %d %s; want 500 with error.code misconfigured", fn.EntryPoint, resp.StatusCode, body)
				}
			}

			// The entry point is the registered name: another name does not start.
			_, proc = runFunction(t, bin, fn.EntryPoint+"Unregistered")
			select {
			case <-proc.exited:
				if proc.err == nil {
					t.Errorf("FUNCTION_TARGET=%sUnregistered exited 0; want a failure", fn.EntryPoint)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("FUNCTION_TARGET=%sUnregistered kept running; want it to fail to start", fn.EntryPoint)
			}
		})
	}
	if !t.Failed() {
		t.Logf("%d functions built from an empty module cache and started in %v", len(rules.Functions), time.Since(start).Round(time.Second))
	}
}

// pushRequest is a raw Pub/Sub push request as the emulator sends it (a
// Gmail notification), for the push endpoint path /projects/P/topics/T.
const pushRequest = `{"subscription":"projects\/demo\/subscriptions\/gmail-push","message":{"publishTime":"2026-12-02T06:15:49.123Z",` +
	`"data":"eyJlbWFpbEFkZHJlc3MiOiJ1c2VyQGV4YW1wbGUuY29tIiwiaGlzdG9yeUlkIjo5ODc2NTQzMjEwfQ==","messageId":"38","attributes":{}}}`

// checkCloudEventFunction checks a CloudEvent function with an empty
// configuration: a Pub/Sub push reaches it and it answers its error (500,
// so Pub/Sub retries); a body that is no Pub/Sub message is refused by the
// framework (400), which shows the target is a CloudEvent function.
func checkCloudEventFunction(t *testing.T, base string, proc *process, entry string) {
	t.Helper()
	waitForAnswer(t, base+"/", proc).Body.Close()
	post := func(body string) (int, string) {
		resp, err := http.Post(base+"/projects/demo/topics/gmail-notifications", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(pushRequest); code != http.StatusInternalServerError {
		t.Errorf("%s, empty configuration, a Pub/Sub push: answered %d %s; want 500 (the function's error: Pub/Sub retries)", entry, code, body)
	}
	if code, body := post(`{"not":"a pub/sub message"}`); code != http.StatusBadRequest {
		t.Errorf("%s given a body that is no Pub/Sub message: answered %d %s; want the framework's 400", entry, code, body)
	}
}

// TestFunctionPackagesMatchImports keeps each function's "packages" in
// terraform/functions.json equal to the module's packages the function imports,
// directly or not (`go list -deps`, for the linux/amd64 build Cloud Functions
// runs): a missing one would fail the deployed build, an extra one ships code
// the function does not run. It also checks that no zip holds local-only code
// (internal/local/...) or a test helper package (a directory named *test, such
// as storetest, smtest or fstest: Go's naming for test helpers, like
// net/http/httptest, kept for them here). When it fails, it prints the list to
// put in functions.json.
func TestFunctionPackagesMatchImports(t *testing.T) {
	root := repoRoot(t)
	rules := loadRules(t, root)
	module := modulePath(t, root)
	for _, key := range rules.sortedKeys() {
		fn := rules.Functions[key]
		t.Run(key, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./"+fn.Dir)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0", "GOWORK=off")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps ./%s: %v\n%s", fn.Dir, err, stderr.Bytes())
			}
			self := module + "/" + fn.Dir
			var want []string // package directories, relative to the module root
			for _, p := range strings.Fields(string(out)) {
				if p == self || !strings.HasPrefix(p, module+"/") {
					continue
				}
				dir := strings.TrimPrefix(p, module+"/")
				if !strings.HasPrefix(dir, "internal/") {
					t.Errorf("%s imports %s: a function may import only the module's internal/ packages (functions/... paths are not in its zip)", fn.Dir, p)
				}
				want = append(want, dir)
			}
			sort.Strings(want)

			listed := map[string]bool{}
			for _, p := range fn.Packages {
				if listed[p] {
					t.Errorf("terraform/functions.json: function %q lists %q twice in \"packages\"", key, p)
				}
				listed[p] = true
			}
			var add, remove []string
			for _, p := range want {
				if !listed[p] {
					add = append(add, strconv.Quote(p))
				}
				delete(listed, p)
			}
			for p := range listed {
				remove = append(remove, strconv.Quote(p))
			}
			sort.Strings(remove)
			if len(add) > 0 || len(remove) > 0 {
				var msg strings.Builder
				fmt.Fprintf(&msg, "terraform/functions.json: the \"packages\" of function %q must be exactly the module packages %s imports, directly or not (go list -deps ./%s):", key, fn.Dir, fn.Dir)
				if len(add) > 0 {
					fmt.Fprintf(&msg, "\n  add:    %s", strings.Join(add, ", "))
				}
				if len(remove) > 0 {
					fmt.Fprintf(&msg, "\n  remove: %s", strings.Join(remove, ", "))
				}
				quoted := make([]string, len(want))
				for i, p := range want {
					quoted[i] = strconv.Quote(p)
				}
				fmt.Fprintf(&msg, "\n  that is, \"packages\": [%s]", strings.Join(quoted, ", "))
				t.Error(msg.String())
			}

			m, err := manifest(root, rules, fn)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range sortedNames(m) {
				if strings.HasPrefix(name, "internal/local/") {
					t.Errorf("the zip of %s holds local-only code: %s", key, name)
				}
				for _, part := range strings.Split(path.Dir(name), "/") {
					if strings.HasSuffix(part, "test") {
						t.Errorf("the zip of %s holds a file of a test helper package (%s/): %s", key, part, name)
					}
				}
			}
		})
	}
}

// modulePath reads the module path from root/go.mod.
func modulePath(t *testing.T, root string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func waitForAnswer(t *testing.T, url string, p *process) *http.Response {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("function exited before answering: %v", p.err)
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeTree creates files (path -> content) under a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goodFunction = `package hello

import "github.com/GoogleCloudPlatform/functions-framework-go/functions"

func init() { functions.HTTP("Hello", nil) }
`

// TestManifestRulesOnASyntheticTree: a listed package brings its own files and
// assets (static/), not its tests, testdata or subpackages (internal/a/sub,
// unless listed too); unlisted packages (internal/b, internal/z) stay out.
func TestManifestRulesOnASyntheticTree(t *testing.T) {
	rules := loadRules(t, repoRoot(t))
	root := writeTree(t, map[string]string{
		"go.mod":                        "module example.com/x\n",
		"go.sum":                        "",
		"README.md":                     "not deployed",
		"functions/hello/hello.go":      goodFunction,
		"functions/hello/more.go":       "package hello\n",
		"functions/hello/hello_test.go": "package hello_test\n",
		"functions/hello/notes.txt":     "not deployed",
		"functions/cmd/dev/main.go":     "package main\n",
		"functions/buildpack_test.go":   "package functions_test\n",
		"internal/a/a.go":               "package a\n",
		"internal/a/a_test.go":          "package a\n",
		"internal/a/static/page.html":   "<p>embedded</p>",
		"internal/a/testdata/in.json":   "{}",
		"internal/b/testdata/x/deep.go": "package x\n",
		"internal/b/c/c.go":             "package c\n",
		"internal/b/c/static/c.css":     "p {}",
		"internal/a/sub/sub.go":         "package sub\n",
		"internal/a/sub/static/s.html":  "<p>sub's, not a's</p>",
		"internal/a/only/x_test.go":     "package only\n",
		"internal/z/z.go":               "package z\n",
		"internal/b/b.go":               "package b\n",
	})
	got, err := manifest(root, rules, function{Dir: "functions/hello", Packages: []string{"internal/a", "internal/b/c"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"go.mod":                      "go.mod",
		"go.sum":                      "go.sum",
		"hello.go":                    "functions/hello/hello.go",
		"more.go":                     "functions/hello/more.go",
		"internal/a/a.go":             "internal/a/a.go",
		"internal/a/static/page.html": "internal/a/static/page.html",
		"internal/b/c/c.go":           "internal/b/c/c.go",
		"internal/b/c/static/c.css":   "internal/b/c/static/c.css",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("manifest:\n got %v\nwant %v", got, want)
	}
	data, err := writeZip(root, got)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := unzip(data, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := checkBuildpackRoot(dir); err != nil {
		t.Fatalf("valid synthetic source rejected: %v", err)
	}
}

func TestBuildpackRootCheckRejects(t *testing.T) {
	const goMod = "module example.com/x\n\ngo 1.26\n"
	for name, tc := range map[string]struct {
		files map[string]string
		want  string
	}{
		"two package names": {
			files: map[string]string{"go.mod": goMod, "hello.go": goodFunction, "other.go": "package other\n"},
			want:  "two package names",
		},
		"a _test.go at the root (external test package)": {
			files: map[string]string{"go.mod": goMod, "hello.go": goodFunction, "hello_test.go": "package hello_test\n"},
			want:  "test files",
		},
		"a _test.go at the root (same package)": {
			files: map[string]string{"go.mod": goMod, "hello.go": goodFunction, "hello_test.go": "package hello\n"},
			want:  "test files",
		},
		"no go.mod": {
			files: map[string]string{"hello.go": goodFunction},
			want:  "go.mod missing",
		},
		"module path without a dot": {
			files: map[string]string{"go.mod": "module gmailoauth\n", "hello.go": goodFunction},
			want:  "needs a dot",
		},
		"no package at the root": {
			files: map[string]string{"go.mod": goMod, "internal/a/a.go": "package a\n"},
			want:  "no .go files",
		},
		"package main at the root": {
			files: map[string]string{"go.mod": goMod, "main.go": "package main\n\nimport _ \"" + functionsPackage + "\"\n"},
			want:  "package is main",
		},
		"no functions.HTTP registration": {
			files: map[string]string{"go.mod": goMod, "hello.go": "package hello\n"},
			want:  "does not import",
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := checkBuildpackRoot(writeTree(t, tc.files))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestZipManifestMatchesTerraform compares this file's assembly with the file
// lists OpenTofu computed from terraform/functions.tf (local.function_sources,
// printed by `tofu console` in .ci/tf-check). Skipped unless that file is given.
func TestZipManifestMatchesTerraform(t *testing.T) {
	file := os.Getenv("GMAILOAUTH_TF_FUNCTION_SOURCES")
	if file == "" {
		t.Skip("GMAILOAUTH_TF_FUNCTION_SOURCES not set (.ci/tf-check sets it)")
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// tofu console prints the jsonencode()d value as a quoted string.
	text, err := strconv.Unquote(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("unexpected tofu console output %q: %v", raw, err)
	}
	var tf map[string]map[string]string
	if err := json.Unmarshal([]byte(text), &tf); err != nil {
		t.Fatal(err)
	}
	root := repoRoot(t)
	rules := loadRules(t, root)
	if len(tf) != len(rules.Functions) {
		t.Errorf("terraform has %d functions, functions.json %d", len(tf), len(rules.Functions))
	}
	for key, fn := range rules.Functions {
		got, err := manifest(root, rules, fn)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tf[key]) {
			t.Errorf("%s: Go and Terraform zip file lists differ\n  go: %v\n  tf: %v", key, got, tf[key])
		}
	}
}
