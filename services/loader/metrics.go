package loader

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sinewhq/sinew/pkg/fusion"
	"github.com/sinewhq/sinew/pkg/telemetry"
)

// MetricESSJobSeconds is how long the loader waited for an ESS job to end
// (from the request's submission, or from this process's first poll of a
// batch it resumed), by flow, job (load: the FBDI load chain; import: a
// group's Journal Import) and Fusion's final status (SUCCEEDED, WARNING,
// ERROR...). Fusion's own request latency is pkg/fusion's series.
const MetricESSJobSeconds = "sinew_fusion_ess_job_seconds"

func newESSHistogram(reg prometheus.Registerer) (*prometheus.HistogramVec, error) {
	return telemetry.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricESSJobSeconds, Help: "Time an ESS job took to reach its final status, by flow, job (load, import) and status.",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 14), // 0.5 s … 68 min
	}, []string{"flow", "job", "status"}))
}

// essJob records one ESS job's wait; a no-op without metrics (unit tests).
func (s *Service) essJob(flow, job string, st fusion.JobStatus, took time.Duration) {
	if s.ess == nil {
		return
	}
	s.ess.WithLabelValues(telemetry.SafeLabel(flow), job, telemetry.SafeLabel(string(st))).Observe(took.Seconds())
}
