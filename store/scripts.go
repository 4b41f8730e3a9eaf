package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"
)

// HookScript is a TypeScript hook's code: the hook itself is a Webhook row
// with the same ID (kind, events, enabled, deliveries); this is what makes
// it run code instead of POSTing to a URL.
type HookScript struct {
	WebhookID string
	Name      string
	// Source is the TypeScript as the admin wrote it; Compiled is the
	// JavaScript made from it at save.
	Source    string
	Compiled  string
	Timeout   time.Duration
	UpdatedAt time.Time
}

const hookScriptCols = `webhook_id, name, source, compiled, timeout_ms, updated_at`

func scanHookScript(row interface{ Scan(...any) error }) (*HookScript, error) {
	var h HookScript
	var timeout, updated int64
	if err := row.Scan(&h.WebhookID, &h.Name, &h.Source, &h.Compiled, &timeout, &updated); err != nil {
		return nil, err
	}
	h.Timeout, h.UpdatedAt = time.Duration(timeout)*time.Millisecond, fromMS(updated)
	return &h, nil
}

// InsertHookScript adds the code of a TypeScript hook whose webhook row
// has been inserted in the same transaction.
func (t *Tx) InsertHookScript(ctx context.Context, h HookScript) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO hook_scripts (`+hookScriptCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		h.WebhookID, h.Name, h.Source, h.Compiled, h.Timeout.Milliseconds(), ms(h.UpdatedAt))
	return mapErr("insert hook script", err)
}

// UpdateHookScript replaces a TypeScript hook's name, code and timeout.
func (t *Tx) UpdateHookScript(ctx context.Context, h HookScript) error {
	res, err := t.q.ExecContext(ctx, `UPDATE hook_scripts SET name = ?, source = ?, compiled = ?, timeout_ms = ?, updated_at = ? WHERE webhook_id = ?`,
		h.Name, h.Source, h.Compiled, h.Timeout.Milliseconds(), ms(h.UpdatedAt), h.WebhookID)
	if err != nil {
		return mapErr("update hook script", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("update hook script", sql.ErrNoRows)
	}
	return nil
}

// UpdateWebhookEvents sets a hook's events and enabled flag.
func (t *Tx) UpdateWebhookEvents(ctx context.Context, id string, allEvents bool, events []string, enabled bool, at time.Time) error {
	ev, err := json.Marshal(append([]string{}, events...))
	if err != nil {
		return mapErr("update webhook events", err)
	}
	res, err := t.q.ExecContext(ctx, `UPDATE webhooks SET all_events = ?, events = ?, enabled = ?, updated_at = ? WHERE id = ?`,
		allEvents, string(ev), enabled, ms(at), id)
	if err != nil {
		return mapErr("update webhook events", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return mapErr("update webhook events", sql.ErrNoRows)
	}
	return nil
}

// HookScript finds the code of a TypeScript hook; ErrNotFound means the
// webhook is an HTTP one (or does not exist).
func (t *Tx) HookScript(ctx context.Context, webhookID string) (*HookScript, error) {
	h, err := scanHookScript(t.q.QueryRowContext(ctx, `SELECT `+hookScriptCols+` FROM hook_scripts WHERE webhook_id = ?`, webhookID))
	return h, mapErr("hook script", err)
}

// HookScriptNames maps every TypeScript hook's webhook ID to its name, for
// the hooks list (there are few).
func (t *Tx) HookScriptNames(ctx context.Context) (map[string]string, error) {
	rows, err := t.q.QueryContext(ctx, `SELECT webhook_id, name FROM hook_scripts`)
	if err != nil {
		return nil, mapErr("hook script names", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, mapErr("hook script names", err)
		}
		out[id] = name
	}
	return out, mapErr("hook script names", rows.Err())
}

// SetDeliveryOutput keeps what a script delivery's last attempt wrote to
// the console (empty clears it).
func (t *Tx) SetDeliveryOutput(ctx context.Context, id int64, output string) error {
	_, err := t.q.ExecContext(ctx, `UPDATE webhook_deliveries SET last_output = ? WHERE id = ?`, nullString(output), id)
	return mapErr("set delivery output", err)
}

// DeliveryOutputs returns the console output of the given deliveries that
// have one.
func (t *Tx) DeliveryOutputs(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := map[int64]string{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := `SELECT id, last_output FROM webhook_deliveries WHERE last_output IS NOT NULL AND id IN (?` + repeatPlaceholders(len(ids)-1) + `)`
	rows, err := t.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr("delivery outputs", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var s string
		if err := rows.Scan(&id, &s); err != nil {
			return nil, mapErr("delivery outputs", err)
		}
		out[id] = s
	}
	return out, mapErr("delivery outputs", rows.Err())
}

func repeatPlaceholders(n int) string {
	s := ""
	for range n {
		s += ", ?"
	}
	return s
}
