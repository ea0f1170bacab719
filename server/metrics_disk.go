package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// diskCollector exposes the free and total bytes of the file system that
// holds the data directory, read at scrape time, so that an alert fires
// before a full disk stops the engine acknowledging (it fails closed: see
// trail_failed). A log kept in a database has no data directory to watch,
// and no diskCollector.
type diskCollector struct{ dir string }

var (
	descDiskFree = prometheus.NewDesc("trail_disk_free_bytes", "Bytes free for unprivileged users on the file system holding the data directory.", nil, nil)
	descDiskSize = prometheus.NewDesc("trail_disk_size_bytes", "Size in bytes of the file system holding the data directory.", nil, nil)
)

var _ prometheus.Collector = diskCollector{}

func (c diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDiskFree
	ch <- descDiskSize
}

// Collect sends nothing when the file system cannot be asked (another
// operating system, or the directory is gone): a missing series, which
// alerts on absent() catch, rather than a made-up value.
func (c diskCollector) Collect(ch chan<- prometheus.Metric) {
	free, size, err := diskSpace(c.dir)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(free))
	ch <- prometheus.MustNewConstMetric(descDiskSize, prometheus.GaugeValue, float64(size))
}
