// Package fhirschema validates JSON against HL7's official FHIR R4 JSON
// schema, for tests: what Trail answers is checked against the standard,
// not against Trail's own structs.
//
// The schema file is fetched by fhir/testdata/get-schema.sh (CI runs it).
// Where it is missing, Load skips the test with a message saying how to
// get it, except under CI (CI=true), where it fails the test.
package fhirschema

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema validates resources of every R4 type.
type Schema struct {
	root *jsonschema.Schema
}

var (
	once   sync.Once
	schema *Schema
	err    error
)

// Path is where get-schema.sh puts the schema.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "fhir", "testdata", "schema", "fhir.schema.json")
}

// Load returns the schema, compiled once per test binary.
func Load(tb testing.TB) *Schema {
	tb.Helper()
	if _, statErr := os.Stat(Path()); statErr != nil {
		msg := "FHIR R4 JSON schema missing: run fhir/testdata/get-schema.sh (" + statErr.Error() + ")"
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	once.Do(func() {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft6)
		var root *jsonschema.Schema
		root, err = c.Compile(Path())
		schema = &Schema{root: root}
	})
	if err != nil {
		tb.Fatalf("compile FHIR schema: %v", err)
	}
	return schema
}

// Validate checks one resource (JSON) against the schema: resourceType
// picks the definition, every element must be one R4 defines, and every
// value must have its type and grammar.
func (s *Schema) Validate(data []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.root.Validate(v)
}

// Check fails the test when data is not a valid resource of type want.
func (s *Schema) Check(tb testing.TB, want string, data []byte) {
	tb.Helper()
	if err := s.Validate(data); err != nil {
		tb.Fatalf("not a valid FHIR R4 resource: %v\n%s", err, data)
	}
	var r struct {
		ResourceType string `json:"resourceType"`
	}
	if jsonUnmarshal(data, &r); r.ResourceType != want {
		tb.Fatalf("resourceType %q, want %q:\n%s", r.ResourceType, want, data)
	}
}

func jsonUnmarshal(data []byte, v any) { _ = json.Unmarshal(data, v) }
