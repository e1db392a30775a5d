package loadtest

// What the tests of this folder read that nothing else needs.

// Latency returns the summary of everything recorded so far.
func (r *Recorder) Latency() Latency {
	r.mu.Lock()
	defer r.mu.Unlock()
	return latencyOf(r.total)
}

// Latency returns the summary of the whole distribution.
func (d Dist) Latency() (Latency, error) {
	dd, err := d.decode()
	if err != nil {
		return Latency{}, err
	}
	return latencyOf(dd.total), nil
}

// Count returns the number of values in the distribution.
func (d Dist) Count() (int64, error) {
	dd, err := d.decode()
	if err != nil {
		return 0, err
	}
	return dd.total.TotalCount(), nil
}

// Config returns the generator's configuration.
func (g *Generator) Config() GeneratorConfig { return g.cfg }

// Enabled reports whether the line is printed.
func (p *Progress) Enabled() bool { return p.enabled }
