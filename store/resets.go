package store

import (
	"context"
	"time"
)

// ReserveResetCodeAttemptCapped takes one of a reset request's code
// attempts before the code is compared, with a second cap across
// requests: it takes an attempt only while the request has had
// fewer than max tries AND all the user's requests made since `since`
// have had fewer than dailyMax between them. One statement, so parallel
// guesses cannot pass either cap, and asking for a new code every minute
// no longer buys five more guesses each time.
//
// On PostgreSQL the user's row is locked first (Tx.serialized), so that
// the sum over the user's requests is read after earlier reservations commit.
func (t *Tx) ReserveResetCodeAttemptCapped(ctx context.Context, id, userID string, max, dailyMax int, since time.Time) (bool, error) {
	var ok bool
	err := t.serialized(ctx, `SELECT 1 FROM users WHERE id = ? FOR UPDATE`, []any{userID}, func(t *Tx) error {
		var err error
		ok, err = t.reserveResetCodeAttemptCapped(ctx, id, userID, max, dailyMax, since)
		return err
	})
	return ok, err
}

func (t *Tx) reserveResetCodeAttemptCapped(ctx context.Context, id, userID string, max, dailyMax int, since time.Time) (bool, error) {
	res, err := t.q.ExecContext(ctx, `UPDATE password_resets SET code_failures = code_failures + 1
		WHERE id = ? AND code_failures < ? AND used_at IS NULL
			AND (SELECT COALESCE(SUM(code_failures), 0) FROM password_resets WHERE user_id = ? AND created_at > ?) < ?`,
		id, max, userID, ms(since), dailyMax)
	if err != nil {
		return false, mapErr("reserve reset code attempt", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
