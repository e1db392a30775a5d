package ddblocal

// Done is closed once the JVM has exited, whether by Stop or not.
func (p *Process) Done() <-chan struct{} { return p.done }
