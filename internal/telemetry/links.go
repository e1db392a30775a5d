package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

type linksKey struct{}

// WithLinks returns ctx carrying links that every span started for a
// request made under ctx should carry: ingest puts there the event spans a
// batch carries, so each DynamoDB request span links to all of them.
func WithLinks(ctx context.Context, links []trace.Link) context.Context {
	if len(links) == 0 {
		return ctx
	}
	return context.WithValue(ctx, linksKey{}, links)
}

// Links returns the links WithLinks put in ctx.
func Links(ctx context.Context) []trace.Link {
	l, _ := ctx.Value(linksKey{}).([]trace.Link)
	return l
}
