package trail

import "context"

// Appender is what an application logs to: the embedded engine (*Log) and the
// remote client (*client.Client) both satisfy it, so switching between them
// is one line.
type Appender interface {
	// Log hands the event over and returns at once; it never waits for the
	// disk or the network. The Pending's Wait gives the receipt once the
	// event is durable, or why it was not stored.
	Log(ev Event) *Pending
	// Append is Log followed by Wait.
	Append(ctx context.Context, ev Event) (Receipt, error)
	// Close drains: every event handed over is stored or told why not.
	Close(ctx context.Context) error
}

var _ Appender = (*Log)(nil)
