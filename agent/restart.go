package agent

import "time"

// restartBackoff spaces the restarts of an instance whose runs keep
// failing: min after the first failure, doubling with each failure in a
// row, capped at max; a run that lasted healthyAfter counts as healthy, so
// its failure is the first again. Pure: the caller measures run times.
type restartBackoff struct {
	min, max, healthyAfter time.Duration
	// failures counts failed runs in a row; zero: none yet.
	failures int
}

func newRestartBackoff(min, max, healthyAfter time.Duration) *restartBackoff {
	return &restartBackoff{min: min, max: max, healthyAfter: healthyAfter}
}

// failed records a run that failed after ranFor and returns the wait
// before the next run.
func (b *restartBackoff) failed(ranFor time.Duration) time.Duration {
	if ranFor >= b.healthyAfter {
		b.failures = 0
	}
	b.failures++
	d := b.min
	for i := 1; i < b.failures && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}
