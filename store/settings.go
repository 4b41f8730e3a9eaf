package store

import "context"

// Setting returns the value stored under key, or ErrNotFound.
func (t *Tx) Setting(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := t.q.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	return v, mapErr("setting "+key, err)
}

// PutSetting stores value under key, replacing any earlier value.
func (t *Tx) PutSetting(ctx context.Context, key string, value []byte) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	return mapErr("put setting "+key, err)
}

// InsertSettingIfAbsent stores value under key unless a value is already
// there; it reports the value that is stored afterwards, so two processes
// racing to create a secret agree on one.
func (t *Tx) InsertSettingIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	if _, err := t.q.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING`, key, value); err != nil {
		return nil, mapErr("insert setting "+key, err)
	}
	return t.Setting(ctx, key)
}

// DeleteSetting removes key.
func (t *Tx) DeleteSetting(ctx context.Context, key string) error {
	_, err := t.q.ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, key)
	return mapErr("delete setting "+key, err)
}
