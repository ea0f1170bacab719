package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEQuotesThisFile: the README's Go quickstart is this program
// whole, so what a newcomer pastes compiles (the build compiles this file).
func TestREADMEQuotesThisFile(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "## Quickstart (Go)")
	if ok {
		_, after, ok = strings.Cut(after, "```go\n")
	}
	if !ok {
		t.Fatal("README.md has no Go block under \"## Quickstart (Go)\"")
	}
	block, _, _ := strings.Cut(after, "```\n")
	if block != string(src) {
		t.Errorf("the README's Go quickstart differs from examples/quickstart/main.go; paste the file into it")
	}
}
