package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
)

// maxSSELine bounds one line of the event stream: a stored event is at most
// 64 KiB plus what the server adds.
const maxSSELine = 1 << 20

// Tail follows GET /v1/tail: it calls fn with the index and stored bytes of
// each new event of stream (every readable stream when empty), in order,
// until ctx ends, fn returns an error, or the server ends the stream. With
// after set, the server first replays the events after that index.
//
// Tail returns fn's error, ctx.Err(), or an error saying the stream ended;
// to resume, call Tail again with after set to the last index fn was given.
// rec is fn's to keep.
func (c *Client) Tail(ctx context.Context, stream string, after *uint64, fn func(index uint64, rec []byte) error) error {
	v := url.Values{}
	if stream != "" {
		v.Set("stream", stream)
	}
	if after != nil {
		v.Set("after", strconv.FormatUint(*after, 10))
	}
	resp, err := c.get(ctx, "/v1/tail", v, "text/event-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = readSSE(resp.Body, fn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// errTailEnded says the server closed the event stream.
var errTailEnded = errors.New("client: tail: the server ended the event stream; call Tail again with after set to the last index seen")

// readSSE reads server-sent events (the WHATWG EventSource format): "id:"
// is the index, "data:" the stored bytes. Comments (keep-alives) and events
// without data are skipped.
func readSSE(r io.Reader, fn func(index uint64, rec []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxSSELine)
	var (
		id      string
		data    []byte
		hasData bool
	)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if hasData {
				if err := dispatch(id, data, fn); err != nil {
					return err
				}
			}
			id, data, hasData = "", nil, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimPrefix(value, []byte{' '})
		switch string(field) {
		case "id":
			id = string(value)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("client: tail: %w", err)
	}
	return errTailEnded
}

func dispatch(id string, data []byte, fn func(index uint64, rec []byte) error) error {
	index, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return fmt.Errorf("client: tail: event id %q is not an index: the server is not a Trail server of this version", id)
	}
	return fn(index, data)
}
