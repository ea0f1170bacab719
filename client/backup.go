package client

import (
	"context"
	"io"
)

// Backup asks the server for a backup of its data directory
// (GET /v1/admin/backup, which the server records as the admin's read with
// purpose=system): a tar
// archive of a consistent copy up to its latest signed checkpoint, its
// manifest last, without the signing key or the admin token. The caller
// reads it to the end (internal/backup.Untar checks it is whole) and closes
// it. A refusal is an *Error: 403 without the admin grant, 501 for a server
// whose log is in PostgreSQL.
func (c *Client) Backup(ctx context.Context) (io.ReadCloser, error) {
	resp, err := c.get(ctx, "/v1/admin/backup", nil, "application/x-tar")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
