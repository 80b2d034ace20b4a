// Package apidoc holds the tests that keep docs/openapi.yaml, the API
// reference of the three functions, true to the code:
//
//   - the document is OpenAPI 3.1 whose references all resolve and whose
//     schemas all compile as JSON Schema 2020-12;
//   - every error code the Go sources under internal/ can answer is
//     documented, and every documented code exists in the sources;
//   - the real stack (devtest: the functions and the Google sandbox) is
//     driven through success and error paths, every answer is validated
//     against the document (status, required headers, JSON body), and every
//     documented status and code is seen at least once (a short list of
//     answers that only a panic can produce is named, with the reason);
//   - the endpoint table in docs/integrating.md is the one the document
//     renders (go test ./internal/apidoc -update rewrites it, and README.md's
//     copy when README.md has the same markers).
//
// It has no code of its own.
package apidoc
