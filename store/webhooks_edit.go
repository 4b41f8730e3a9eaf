package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"
)

// UpdateWebhook changes a webhook's URL and events; its deliveries stay.
func (t *Tx) UpdateWebhook(ctx context.Context, id, url string, allEvents bool, events []string, at time.Time) error {
	ev, err := json.Marshal(append([]string{}, events...))
	if err != nil {
		return mapErr("update webhook", err)
	}
	res, err := t.q.ExecContext(ctx, `UPDATE webhooks SET url = ?, all_events = ?, events = ?, updated_at = ? WHERE id = ?`,
		url, allEvents, string(ev), ms(at), id)
	if err != nil {
		return mapErr("update webhook", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("update webhook", sql.ErrNoRows)
	}
	return nil
}

// SetWebhookSecret replaces a webhook's (sealed) signing secret.
func (t *Tx) SetWebhookSecret(ctx context.Context, id string, secret []byte, at time.Time) error {
	res, err := t.q.ExecContext(ctx, `UPDATE webhooks SET secret = ?, updated_at = ? WHERE id = ?`, secret, ms(at), id)
	if err != nil {
		return mapErr("set webhook secret", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("set webhook secret", sql.ErrNoRows)
	}
	return nil
}
