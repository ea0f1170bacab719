package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// Error is a refusal by the server: an HTTP status other than success, with
// the members of its application/problem+json body (RFC 9457).
//
// It matches trail.ErrIDConflict (409), trail.ErrNotFound (404) and
// trail.ErrTooLarge (413) with errors.Is.
type Error struct {
	Status int    // HTTP status code
	Title  string // problem title, or the status text
	Detail string // what went wrong, for a person to act on
	// Line is the line of the batch request the problem names, counted from
	// 1; 0 when the problem names none.
	Line int
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trail server: %d %s", e.Status, e.Title)
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Is maps statuses to the engine's sentinel errors, so that code written
// against the embedded engine branches the same way on the client.
func (e *Error) Is(target error) bool {
	switch target {
	case trail.ErrIDConflict:
		return e.Status == http.StatusConflict
	case trail.ErrNotFound:
		return e.Status == http.StatusNotFound
	case trail.ErrTooLarge:
		return e.Status == http.StatusRequestEntityTooLarge
	}
	return false
}

// problem is the problem+json body.
type problem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Line   int    `json:"line"`
}

// maxProblem bounds how much of an error body is read.
const maxProblem = 64 << 10

// readError turns a response that is not a success into an *Error. It reads
// and closes the body.
func readError(resp *http.Response) *Error {
	defer resp.Body.Close()
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblem))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p problem
	if strings.HasSuffix(mt, "json") && json.Unmarshal(body, &p) == nil {
		e.Title, e.Detail, e.Line = p.Title, p.Detail, p.Line
	} else if s := strings.TrimSpace(string(body)); s != "" && !strings.HasPrefix(mt, "text/html") {
		e.Detail = s
	}
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	return e
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// statusError returns the *Error in err's chain, or nil.
func statusError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
