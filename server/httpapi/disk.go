package httpapi

import (
	"golang.org/x/sys/unix"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	diskSizeDesc = prometheus.NewDesc("configd_data_dir_size_bytes",
		"Size of the file system that holds the data dir.", nil, nil)
	diskFreeDesc = prometheus.NewDesc("configd_data_dir_free_bytes",
		"Bytes of the file system that holds the data dir available to configd (a full disk refuses commits: 507 disk_full).", nil, nil)
)

// diskCollector reads the data dir's file system at each scrape.
type diskCollector struct{ dir string }

func newDiskCollector(dir string) diskCollector { return diskCollector{dir} }

func (diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- diskSizeDesc
	ch <- diskFreeDesc
}

func (c diskCollector) Collect(ch chan<- prometheus.Metric) {
	var st unix.Statfs_t
	if err := unix.Statfs(c.dir, &st); err != nil {
		ch <- prometheus.NewInvalidMetric(diskFreeDesc, err)
		return
	}
	bs := float64(st.Bsize)
	ch <- prometheus.MustNewConstMetric(diskSizeDesc, prometheus.GaugeValue, float64(st.Blocks)*bs)
	ch <- prometheus.MustNewConstMetric(diskFreeDesc, prometheus.GaugeValue, float64(st.Bavail)*bs)
}
