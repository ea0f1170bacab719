package backup

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/datadir"
)

// ManifestFile is the manifest's name in a backup, written last.
const ManifestFile = "BACKUP"

// Files of the data directory that belong to package auth, which this
// package cannot import (it imports the engine): auth.AdminTokenFile and
// auth.TokensFile.
const (
	adminTokenFile = "admin.token"
	tokensFile     = "tokens.json"
)

// Version is the layout of backups this build writes and reads.
const Version = 1

// Manifest describes a backup: the checkpoint it is taken up to and every
// file it holds.
type Manifest struct {
	Version    int    `json:"trail_backup"`
	DataFormat int    `json:"data_format"`
	Origin     string `json:"origin"`
	Size       uint64 `json:"size"`       // records: the checkpoint's size
	Root       string `json:"root"`       // the checkpoint's root, hex
	Checkpoint string `json:"checkpoint"` // the signed checkpoint
	Created    string `json:"created"`    // RFC 3339, when the backup was taken
	Files      []File `json:"files"`
}

// File is one file of a backup.
type File struct {
	Name   string `json:"name"` // slash-separated, relative to the backup
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Has reports whether the backup holds the file name.
func (m *Manifest) Has(name string) bool {
	for _, f := range m.Files {
		if f.Name == name {
			return true
		}
	}
	return false
}

// parseManifest decodes and checks a manifest.
func parseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s is not a backup manifest: %w", ManifestFile, err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("%s: backup layout %d, this build reads %d", ManifestFile, m.Version, Version)
	}
	if m.DataFormat != datadir.DataFormat {
		return nil, fmt.Errorf("%s: data format %d, this build reads %d", ManifestFile, m.DataFormat, datadir.DataFormat)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if !validName(f.Name) || f.Size < 0 {
			return nil, fmt.Errorf("%s names %q, which is not a file of a backup", ManifestFile, f.Name)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("%s names %q twice", ManifestFile, f.Name)
		}
		seen[f.Name] = true
	}
	for _, need := range []string{datadir.FormatFile, checkpoint.VerifierFile, checkpoint.LogFile, checkpoint.LatestFile} {
		if !seen[need] {
			return nil, fmt.Errorf("%s does not list %s, which every backup holds", ManifestFile, need)
		}
	}
	return &m, nil
}

// secret reports whether a backup file is a secret (mode 0600, never
// anyone else's to read).
func secret(name string) bool {
	return name == checkpoint.KeyFile || name == adminTokenFile || name == tokensFile
}

// validName reports whether name is one a backup may hold: the data
// directory's own files and segments, nothing else (a tar or a manifest
// naming ../x or an absolute path is refused).
func validName(name string) bool {
	switch name {
	case datadir.FormatFile, checkpoint.VerifierFile, checkpoint.KeyFile, checkpoint.LogFile, checkpoint.LatestFile,
		adminTokenFile, tokensFile:
		return true
	}
	dir, base := path.Split(name)
	if dir != datadir.LogDir+"/" {
		return false
	}
	_, ok := segmentFirst(base)
	return ok
}

// segmentFirst parses a segment file's name: 20 digits and .seg.
func segmentFirst(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, ".seg")
	if !ok || len(s) != 20 {
		return 0, false
	}
	first, err := strconv.ParseUint(s, 10, 64)
	return first, err == nil
}
