// Command keyset prints app keysets for the APP_KEYS_SECRET secret.
//
//	go run ./functions/cmd/keyset                 # a new keyset
//	go run ./functions/cmd/keyset -rotate < old   # old keys kept, new primaries added
//
// Pipe the output straight into Secret Manager so it never lands on disk:
//
//	go run ./functions/cmd/keyset | gcloud secrets versions add app-keys --data-file=-
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"example.com/gmailoauth/internal/keyset"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keyset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rotate := fs.Bool("rotate", false, "read a keyset on stdin and add new primary keys")
	id := fs.String("id", time.Now().UTC().Format("20060102T150405"), "suffix of the new key ids")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var out []byte
	var err error
	if *rotate {
		var in []byte
		if in, err = io.ReadAll(stdin); err != nil {
			err = fmt.Errorf("keyset: reading stdin: %w", err)
		} else {
			out, err = keyset.Rotate(in, *id)
		}
	} else {
		out, err = keyset.Generate(*id)
	}
	if err != nil {
		// The package's errors already say "keyset: …".
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, string(out))
	return 0
}
