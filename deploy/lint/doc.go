// Package lint checks the deployment files of deploy/ with the tools their
// consumers use: deploy/Dockerfile with BuildKit's Dockerfile rules (those of
// docker build --check), deploy/prometheus/alerts.yml with Prometheus's
// rule-file and PromQL parsers and its query engine (each alert fires on
// series made for it, and not on others), and deploy/grafana/trail.json's
// layout and queries. It is a module of its own so that BuildKit's and Prometheus's
// dependencies stay out of Trail's; .ci/run runs its tests.
package lint
