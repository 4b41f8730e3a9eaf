package store

import (
	"context"
	"testing"
	"time"
)

// TestListUsersFailedChannel: the Users list query itself says which
// channel the user's latest password message failed on, so the list
// tells a failed text from a failed email without a query per row; a
// newer password message supersedes a failure, and a failed message of
// another kind is no password failure.
func TestListUsersFailedChannel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, id := range []string{"email-failed", "sms-failed", "superseded", "other-kind", "clean"} {
			addSearchUser(t, s, id, Identity{Kind: "email", Value: id + "@example.com"})
		}
		now := time.Now()
		msg := func(user, kind, channel, status string) {
			t.Helper()
			err := s.InTx(ctx, func(tx *Tx) error {
				m := &OutboxMessage{UserID: user, Kind: kind, Recipient: "r", Subject: "s", Channel: channel, NextAttemptAt: now, CreatedAt: now}
				if err := tx.InsertOutbox(ctx, m); err != nil {
					return err
				}
				_, err := tx.q.ExecContext(ctx, `UPDATE mail_outbox SET status = ? WHERE id = ?`, status, m.ID)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		msg("email-failed", "new_user", ChannelEmail, OutboxFailed)
		msg("sms-failed", "password_reset", ChannelEmail, OutboxDelivered)
		msg("sms-failed", "new_user", ChannelSMS, OutboxFailed)
		msg("superseded", "new_user", ChannelSMS, OutboxFailed)
		msg("superseded", "password_reset", ChannelEmail, OutboxQueued)
		msg("other-kind", "forgot_password", ChannelEmail, OutboxFailed)
		rows, err := s.ListUsers(ctx, ListUsersParams{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range rows {
			if r.EmailFailed != (r.FailedChannel != "") {
				t.Errorf("%s: EmailFailed %v with channel %q", r.ID, r.EmailFailed, r.FailedChannel)
			}
			got[r.ID] = r.FailedChannel
		}
		want := map[string]string{"email-failed": ChannelEmail, "sms-failed": ChannelSMS, "superseded": "", "other-kind": "", "clean": ""}
		for id, ch := range want {
			if c, ok := got[id]; !ok || c != ch {
				t.Errorf("%s: failed channel %q (listed %v), want %q", id, c, ok, ch)
			}
		}
		// The filter agrees with the column.
		ids := searchIDs(t, s, ListUsersParams{Limit: 10, Filters: UserFilters{EmailFailed: true}})
		if len(ids) != 2 {
			t.Errorf("filter found %v, want email-failed and sms-failed", ids)
		}
	})
}
