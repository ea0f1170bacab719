package trail

import (
	"context"

	"github.com/trailhq/trail/verify"
)

// The offline verifier lives in package verify; these are its types under
// the names the engine's API has always used.
type (
	// Checkpoint is a signed checkpoint: a commitment to the first Size
	// events (verify.Checkpoint).
	Checkpoint = verify.Checkpoint
	// VerifyOptions tune Verify (verify.Options).
	VerifyOptions = verify.Options
	// VerifyReport summarises a successful verification (verify.Report).
	VerifyReport = verify.Report
	// VerifyError names the first record (or checkpoint) that fails
	// verification and why (verify.Error).
	VerifyError = verify.Error
)

// ErrNotDataDir: the directory is not a Trail data directory (verify.ErrNotDataDir).
var ErrNotDataDir = verify.ErrNotDataDir

// ParseCheckpoint verifies a signed checkpoint with a verifier key
// (name+hash+base64) and parses it (verify.ParseCheckpoint).
func ParseCheckpoint(signed []byte, verifierKey string) (Checkpoint, error) {
	return verify.ParseCheckpoint(signed, verifierKey)
}

// Verify checks a data directory offline (verify.Dir).
func Verify(ctx context.Context, dir string, opts VerifyOptions) (VerifyReport, error) {
	return verify.Dir(ctx, dir, opts)
}
