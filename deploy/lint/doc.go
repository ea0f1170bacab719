// Package lint checks the deployment files of deploy/ with the tools their
// consumers use: deploy/Dockerfile with BuildKit's Dockerfile rules (those of
// docker build --check), and deploy/prometheus/alerts.yml with Prometheus's
// rule-file and PromQL parsers. It is a module of its own so that their
// dependencies stay out of Trail's; .ci/run runs its tests.
package lint
