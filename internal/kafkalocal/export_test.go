package kafkalocal

// Done is closed once the JVM has exited, whether by Stop, Kill or not.
func (b *Broker) Done() <-chan struct{} { return b.done }
