package trail

import (
	"flag"
	"os"
	"testing"
)

// TestMain makes "go test -short" a quick run while working: the
// property-based suites generate fewer cases and the crash and power-loss
// suites run fewer seeds, unless a flag names its own count. Without -short
// (the README's test command, and .ci/run, which also runs more rounds) every
// suite runs in full.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, value := range map[string]string{
			"rapid.checks": "15",
			"rapid.steps":  "30",
			"faults.seeds": "4",
			"atomic.seeds": "2",
			"query.seeds":  "1",
			"crash.rounds": "2",
		} {
			if !set[name] {
				if err := flag.Set(name, value); err != nil {
					panic(err)
				}
			}
		}
	}
	// Every batch of two records or more is written by two goroutines in
	// the tests, so that each suite tries that path; benchmarks measure the
	// threshold Trail runs with.
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		parallelRecords = 2
	}
	code := m.Run()
	stopPostgres()
	os.Exit(code)
}
