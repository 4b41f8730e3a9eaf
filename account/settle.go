package account

import (
	"context"
	"time"

	"latchkey/store"
)

// Settling a reserved sign-in attempt.
//
// A sign-in reserves its attempt in the lockout counter before the hash
// is checked, and settles it after: a failure counted (and a lock when it
// reaches the threshold), or the failures forgotten on the right
// password. A settlement is a write, and a write can fail (the database
// busy past the write budget, a connection lost). The request then
// answers with that error at once, as any failed write does, and the
// settlement is retried here in the background until it lands, the store
// closes, or the reservation lapses by itself (store.AttemptSettleWindow):
// until then the attempt keeps counting against the account, which is
// the safe side, but it must not do so for a minute, nor miss its
// failure event, because one write failed once.

// settleRetryFirst and settleRetryMax bound the wait between tries.
const (
	settleRetryFirst = 50 * time.Millisecond
	settleRetryMax   = 2 * time.Second
)

// settle runs fn, a reserved attempt's settlement, and when it fails
// retries it in the background (settleLater); it returns fn's error.
func (s *Service) settle(ctx context.Context, what, id string, fn func(ctx context.Context) error) error {
	err := fn(ctx)
	if err != nil {
		s.settleLater(what, id, err, fn)
	}
	return err
}

// settleLater retries settle (what names it in the log) in the background
// after it failed with err.
func (s *Service) settleLater(what, id string, err error, settle func(ctx context.Context) error) {
	s.log.Warn("sign-in attempt not settled: retrying in the background", "settle", what, "id", id, "err", err)
	go func() {
		ctx := context.Background()
		giveUp := time.Now().Add(store.AttemptSettleWindow)
		wait := settleRetryFirst
		for tries := 2; ; tries++ {
			time.Sleep(wait)
			if s.store.Closed() {
				return
			}
			err := settle(ctx)
			if err == nil {
				s.log.Info("sign-in attempt settled", "settle", what, "id", id, "tries", tries)
				return
			}
			if time.Now().After(giveUp) {
				s.log.Error("sign-in attempt left unsettled: it lapses by itself", "settle", what, "id", id, "tries", tries, "err", err)
				return
			}
			wait = min(2*wait, settleRetryMax)
		}
	}()
}
