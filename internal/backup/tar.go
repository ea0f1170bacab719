package backup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"time"
)

// TarWriter is a Writer onto a tar archive (ustar, regular files mode
// 0600), as GET /v1/admin/backup streams it.
type TarWriter struct {
	tw *tar.Writer
}

// NewTarWriter returns a Writer of a tar archive onto w.
func NewTarWriter(w io.Writer) *TarWriter { return &TarWriter{tw: tar.NewWriter(w)} }

// File adds one file to the archive.
func (t *TarWriter) File(name string, size int64, r io.Reader) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: time.Now().Truncate(time.Second), Format: tar.FormatPAX}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyN(t.tw, r, size)
	if err != nil {
		return fmt.Errorf("%d of %d bytes: %w", n, size, err)
	}
	return nil
}

// Close ends the archive (it does not close the underlying writer).
func (t *TarWriter) Close() error { return t.tw.Close() }

// Untar reads a backup's tar archive from r into w: regular files with the
// names a backup holds, the manifest last. An archive cut short (a server
// or connection that died mid-stream) is an error matching ErrInvalid.
func Untar(r io.Reader, w Writer) error {
	tr := tar.NewReader(r)
	manifest := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if !manifest {
				return invalidf("the archive ends before its %s manifest: the backup was cut short", ManifestFile)
			}
			return nil
		}
		if err != nil {
			return invalidf("read the archive: %v (the backup was cut short?)", err)
		}
		if manifest {
			return invalidf("the archive holds %s after its manifest", hdr.Name)
		}
		if hdr.Typeflag != tar.TypeReg || !validName(hdr.Name) && hdr.Name != ManifestFile {
			return invalidf("the archive holds %q, which is not a file of a backup", hdr.Name)
		}
		if err := w.File(hdr.Name, hdr.Size, tr); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return invalidf("%s is cut short: %v", hdr.Name, err)
			}
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		manifest = hdr.Name == ManifestFile
	}
}
