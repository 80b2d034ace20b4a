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

func main() {
	rotate := flag.Bool("rotate", false, "read a keyset on stdin and add new primary keys")
	id := flag.String("id", time.Now().UTC().Format("20060102T150405"), "suffix of the new key ids")
	flag.Parse()
	var out []byte
	var err error
	if *rotate {
		var in []byte
		if in, err = io.ReadAll(os.Stdin); err == nil {
			out, err = keyset.Rotate(in, *id)
		}
	} else {
		out, err = keyset.Generate(*id)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyset:", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
