// Package deploy holds what it takes to run Trail in production, and the
// tests that keep those files true to the server:
//
//   - Dockerfile: a static binary on a distroless image, run as an
//     unprivileged user, its data in the volume /data. The tests build the
//     binary with the Dockerfile's own go build line, check that it is
//     statically linked, and run it with the image's ENV, ENTRYPOINT, CMD and
//     HEALTHCHECK; deploy/lint lints the file with BuildKit's rules.
//   - trail.service: a sandboxed systemd unit, checked with systemd-analyze
//     verify and rated with systemd-analyze security.
//   - prometheus/alerts.yml and grafana/trail.json: alerts and a dashboard
//     whose every metric name the tests find in a running server's /metrics;
//     deploy/lint parses the rules with Prometheus's own parsers.
//
// The package has no code of its own.
package deploy
