// Package fhirschema validates JSON against HL7's official FHIR R4 JSON
// schema, for tests: what Trail answers is checked against the standard,
// not against Trail's own structs.
//
// The schema file is fetched by fhir/testdata/get-schema.sh, which .ci/run
// runs and Load runs when the file is missing; a test that cannot get it
// fails, it never skips.
package fhirschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema validates resources of every R4 type.
type Schema struct {
	c     *jsonschema.Compiler
	root  *jsonschema.Schema
	mu    sync.Mutex
	types map[string]*jsonschema.Schema
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
	once.Do(func() {
		if _, statErr := os.Stat(Path()); statErr != nil {
			// Fetched once per machine (npm is part of a fresh machine);
			// the tests never run without it.
			script := filepath.Join(filepath.Dir(Path()), "..", "get-schema.sh")
			if out, runErr := exec.Command("bash", script).CombinedOutput(); runErr != nil {
				err = fmt.Errorf("FHIR R4 JSON schema missing (%v), and %s failed: %v\n%s", statErr, script, runErr, out)
				return
			}
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft6)
		var doc any
		if doc, err = load(); err != nil {
			return
		}
		if err = c.AddResource(Path(), doc); err != nil {
			return
		}
		var root *jsonschema.Schema
		root, err = c.Compile(Path())
		schema = &Schema{c: c, root: root, types: map[string]*jsonschema.Schema{}}
	})
	if err != nil {
		tb.Fatalf("compile FHIR schema: %v", err)
	}
	return schema
}

// load reads the schema and adds "4.0.1" to the FHIR versions its
// CapabilityStatement.fhirVersion allows. The schema HL7 published with R4
// (4.0.0) lists versions up to 4.0.0; 4.0.1 is R4's technical correction,
// which Trail's CapabilityStatement must name. Nothing else is changed.
func load() (any, error) {
	f, err := os.Open(Path())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	fv, ok := dig(doc, "definitions", "CapabilityStatement", "properties", "fhirVersion").(map[string]any)
	if !ok {
		return nil, errors.New("schema has no CapabilityStatement.fhirVersion")
	}
	enum, _ := fv["enum"].([]any)
	if !slices.Contains(enum, any("4.0.0")) {
		return nil, errors.New("schema's CapabilityStatement.fhirVersion does not list 4.0.0: not the R4 schema")
	}
	fv["enum"] = append(enum, "4.0.1")
	return doc, nil
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
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

// ValidateAs checks one resource against the definition of its type
// alone, whose errors are shorter than the whole schema's.
func (s *Schema) ValidateAs(typ string, data []byte) error {
	s.mu.Lock()
	sc, ok := s.types[typ]
	if !ok {
		var err error
		if sc, err = s.c.Compile(Path() + "#/definitions/" + typ); err != nil {
			s.mu.Unlock()
			return err
		}
		s.types[typ] = sc
	}
	s.mu.Unlock()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sc.Validate(v)
}

// Check fails the test when data is not a valid resource of type want:
// valid against the definition of want, and against the whole schema.
func (s *Schema) Check(tb testing.TB, want string, data []byte) {
	tb.Helper()
	if err := s.ValidateAs(want, data); err != nil {
		tb.Fatalf("not a valid FHIR R4 %s: %v\n%s", want, err, data)
	}
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
