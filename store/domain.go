package store

import "context"

// RetentionDays returns the account's retention as the API must see it:
// fresh within Config.ConfigMaxAge.
func (s *Store) RetentionDays(ctx context.Context, account string) (int, error) {
	c, err := s.FreshAccount(ctx, account)
	if err != nil {
		return 0, wrapErr("read account", err)
	}
	return c.RetentionDays, nil
}

// SetRetentionDays is SetRetention for callers that know only the domain:
// it returns the retention now in force.
func (s *Store) SetRetentionDays(ctx context.Context, account string, days int) (int, error) {
	c, err := s.SetRetention(ctx, account, days)
	if err != nil {
		return 0, wrapErr("set retention", err)
	}
	return c.RetentionDays, nil
}
