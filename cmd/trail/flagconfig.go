package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"go.yaml.in/yaml/v3"
)

// A command's flags may also come from the environment and from a TOML or
// YAML file: --read-rate from TRAIL_READ_RATE, or from the key read-rate of
// the file --config (or TRAIL_CONFIG) names. For each flag the first of these
// that has it wins: the command line, the environment, the file, the
// default. A repeatable flag takes all its values from that one source.

// envPrefix starts the environment variable of every flag.
const envPrefix = "TRAIL_"

// envName is the environment variable of the flag name: --read-rate is
// TRAIL_READ_RATE.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// secretFlag reports whether the values of the flag name are kept out of
// error messages.
func secretFlag(name string) bool {
	for _, w := range []string{"secret", "token", "key", "password"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// repeatable marks the flag values that take several values: arrays in the
// file, comma-separated lists in the environment.
type repeatable interface{ repeatable() }

func (*stringList) repeatable() {}

// parseConfigured parses args into fs, then sets every flag the command
// line did not set from its TRAIL_ variable in environ or, without one,
// from the configuration file. configFlag is the flag that names the file
// (TRAIL_CONFIG sets it too; the file cannot). Empty variables count as
// unset; TRAIL_ variables that name no flag are left alone (other programs
// share the prefix). Errors about the environment or the file have the
// usage exit code (2).
func parseConfigured(fs *flag.FlagSet, args, environ []string, configFlag string) error {
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, envPrefix) && v != "" {
			env[k] = v
		}
	}
	path := fs.Lookup(configFlag).Value.String()
	if v, ok := env[envName(configFlag)]; ok && !onCommandLine[configFlag] {
		path = v
		fs.Set(configFlag, v)
	}
	var file map[string]any
	if path != "" {
		var err error
		if file, err = readConfigFile(fs, path, configFlag); err != nil {
			return &exitError{2, err}
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if onCommandLine[f.Name] || f.Name == configFlag {
			return
		}
		if v, ok := env[envName(f.Name)]; ok {
			values := []string{v}
			if _, ok := f.Value.(repeatable); ok {
				values = splitList(v)
			}
			if err := setFlag(f, values); err != nil {
				errs = append(errs, fmt.Errorf("%s=%s: %w", envName(f.Name), shown(f.Name, v), err))
			}
			return
		}
		v, ok := file[f.Name]
		if !ok {
			return
		}
		values, err := tomlValues(f, v)
		if err == nil {
			err = setFlag(f, values)
		}
		if err != nil {
			value := "null"
			if v != nil {
				value = shown(f.Name, fmt.Sprint(v))
			}
			errs = append(errs, fmt.Errorf("config file %s: key %s, value %s: %w", path, f.Name, value, err))
		}
	})
	if len(errs) > 0 {
		return &exitError{2, errors.Join(errs...)}
	}
	return nil
}

// shown is v quoted, or a placeholder for a secret flag's value.
func shown(name, v string) string {
	if secretFlag(name) {
		return "(value not shown)"
	}
	return strconv.Quote(v)
}

// setFlag sets f to values, in order.
func setFlag(f *flag.Flag, values []string) error {
	for _, v := range values {
		if err := f.Value.Set(v); err != nil {
			if secretFlag(f.Name) {
				return fmt.Errorf("invalid value for --%s", f.Name)
			}
			return fmt.Errorf("invalid value for --%s: %w%s", f.Name, err, wanted(f))
		}
	}
	return nil
}

// wanted says what f takes, for an error message.
func wanted(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case bool:
		return " (want true or false)"
	case int, int64, uint, uint64:
		return " (want an integer)"
	case float64:
		return " (want a number)"
	case time.Duration:
		return " (want a duration such as 30s or 1m30s)"
	}
	return ""
}

// splitList splits a repeatable flag's environment value at commas.
func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// readConfigFile decodes the file at path (YAML when its name ends in
// .yaml or .yml, TOML otherwise) and checks that each of its keys names a
// flag of fs.
func readConfigFile(fs *flag.FlagSet, path, configFlag string) (map[string]any, error) {
	var m map[string]any
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		m, err = decodeYAML(path)
	default:
		_, err = toml.DecodeFile(path, &m)
	}
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k != configFlag && fs.Lookup(k) != nil {
			continue
		}
		msg := fmt.Sprintf("config file %s: unknown key %q", path, k)
		if k == configFlag {
			msg = fmt.Sprintf("config file %s: key %q: a config file cannot name another", path, k)
		} else if s := closestFlag(fs, k, configFlag); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		errs = append(errs, errors.New(msg))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// decodeYAML decodes the YAML file at path: one document, a mapping (or
// nothing). Keys are checked by readConfigFile, as a TOML file's are.
func decodeYAML(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var m map[string]any
	if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var more any
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document: keep the settings in one")
	}
	return m, nil
}

// tomlValues turns a TOML or YAML value into the strings f is set to: a
// string, number or boolean is one; an array, for a repeatable flag, is
// several.
func tomlValues(f *flag.Flag, v any) ([]string, error) {
	if a, ok := v.([]any); ok {
		if _, ok := f.Value.(repeatable); !ok {
			return nil, fmt.Errorf("--%s takes one value, not an array", f.Name)
		}
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, err := tomlScalar(f, e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := tomlScalar(f, v)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func tomlScalar(f *flag.Flag, v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int: // YAML
		return strconv.Itoa(v), nil
	case uint64: // YAML, above the range of int64
		return strconv.FormatUint(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case map[string]any:
		return "", fmt.Errorf("--%s wants a value, not a table", f.Name)
	case nil: // YAML's null, or a key with no value
		return "", fmt.Errorf("--%s wants a value, not null (leave the key out for the default)", f.Name)
	}
	return "", fmt.Errorf("--%s wants a string, a number or a boolean", f.Name)
}

// closestFlag is the flag name of fs nearest to key, when one is near
// enough to be what was meant ("" otherwise).
func closestFlag(fs *flag.FlagSet, key, configFlag string) string {
	norm := strings.ToLower(strings.ReplaceAll(key, "_", "-"))
	best, bestD := "", 0
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag {
			return
		}
		d := editDistance(norm, f.Name)
		if best == "" || d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" || bestD > max(2, len(key)/4) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
