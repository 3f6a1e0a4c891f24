// Package deploy holds configd's deployment assets, which are not Go:
// prometheus/ (a scrape configuration, alerting rules and their unit
// tests) and grafana/ (dashboards for configd and for services on the RPC
// core). Its tests check them with Prometheus' own promtool and against
// the metrics the code exports (docs/deploy.md).
package deploy
