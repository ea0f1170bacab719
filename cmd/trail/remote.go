package main

import (
	"errors"
	"flag"
	"os"

	"github.com/trailhq/trail/client"
)

// remoteFlags are the flags of the commands that talk to a server.
type remoteFlags struct {
	server, token *string
}

func addRemoteFlags(fs *flag.FlagSet) remoteFlags {
	return remoteFlags{
		server: fs.String("server", os.Getenv("TRAIL_SERVER"), "server URL (default $TRAIL_SERVER)"),
		token:  fs.String("token", "", "bearer token (default $TRAIL_TOKEN)"),
	}
}

// client returns a client of the server the flags name.
func (r remoteFlags) client(opts ...client.Option) (*client.Client, error) {
	if *r.server == "" {
		return nil, &exitError{code: 2, err: errors.New("no server: pass --server URL or set TRAIL_SERVER (e.g. http://127.0.0.1:7070)")}
	}
	tok := *r.token
	if tok == "" {
		tok = os.Getenv("TRAIL_TOKEN")
	}
	return client.New(*r.server, append([]client.Option{client.WithToken(tok)}, opts...)...)
}
