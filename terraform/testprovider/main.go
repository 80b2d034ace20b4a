// Command terraform-provider-schemaonly is a stand-in provider plugin for
// offline checks of ../*.tf with OpenTofu.
//
// The real providers (hashicorp/google, archive, random) cannot be downloaded
// on machines without registry access, but `tofu validate` and `tofu test`
// with mock_provider only need a provider's *schema*: validation is done by
// OpenTofu against the schema, and mock providers answer every plan/read with
// generated values. This plugin serves exactly the schemas recorded with
// `tofu providers schema -json` (testdata/provider-schemas.json, trimmed to
// the types the configuration uses) over plugin protocol 6, and performs no
// API calls: every operation that would need one answers with an error.
//
// One binary serves all three providers: it picks the provider from its own
// file name (terraform-provider-<type>_v<version>), which is how .ci/tf-check
// installs it into a filesystem mirror.
package main

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"
)

//go:embed testdata/provider-schemas.json.gz
var schemasGz []byte

func main() {
	name := providerName(os.Args[0])
	if v := os.Getenv("SCHEMAONLY_PROVIDER"); v != "" {
		name = v
	}
	all, err := loadSchemas(schemasGz)
	if err != nil {
		log.Fatal(err)
	}
	raw, ok := all[name]
	if !ok {
		log.Fatalf("schemaonly: no recorded schema for provider %q (binary %s)", name, os.Args[0])
	}
	resp, err := convertProvider(raw)
	if err != nil {
		log.Fatalf("schemaonly: provider %s: %v", name, err)
	}
	if err := tf6server.Serve("registry.opentofu.org/hashicorp/"+name, func() tfprotov6.ProviderServer {
		return &server{name: name, schema: resp}
	}); err != nil {
		log.Fatal(err)
	}
}

// providerName extracts "google" from ".../terraform-provider-google_v7.45.0".
func providerName(arg0 string) string {
	base := filepath.Base(arg0)
	base = strings.TrimPrefix(base, "terraform-provider-")
	if i := strings.Index(base, "_"); i >= 0 {
		base = base[:i]
	}
	return base
}

// loadSchemas returns the per-provider JSON keyed by the provider's type name
// ("google", "archive", "random").
func loadSchemas(gz []byte) (map[string]json.RawMessage, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	var doc struct {
		ProviderSchemas map[string]json.RawMessage `json:"provider_schemas"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing provider schemas: %w", err)
	}
	out := map[string]json.RawMessage{}
	for addr, raw := range doc.ProviderSchemas {
		out[addr[strings.LastIndex(addr, "/")+1:]] = raw
	}
	return out, nil
}
