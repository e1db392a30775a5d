package ingest

import "github.com/sony/gobreaker/v2"

// BreakerState returns the circuit breaker's state.
func (s *Service) BreakerState() gobreaker.State { return s.breaker.State() }

// Concurrency returns the current AIMD write limit.
func (s *Service) Concurrency() float64 {
	l, _ := s.limit.current()
	return l
}
