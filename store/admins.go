package store

import (
	"context"
	"database/sql"
	"time"
)

// Admin is a portal administrator. Admins are kept apart from end users:
// their own table, their own sign-in and their own session cookie.
type Admin struct {
	ID           string
	Email        string
	PasswordHash string
	CreatedAt    time.Time
	LastLoginAt  *time.Time
}

// CountAdmins reports how many admins exist.
func (t *Tx) CountAdmins(ctx context.Context) (int, error) {
	var n int
	err := t.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM admins`).Scan(&n)
	return n, mapErr("count admins", err)
}

// InsertAdmin creates an admin; a taken email gives ErrConflict.
func (t *Tx) InsertAdmin(ctx context.Context, a Admin) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO admins (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		a.ID, a.Email, a.PasswordHash, ms(a.CreatedAt))
	return mapErr("insert admin", err)
}

const adminCols = `id, email, password_hash, created_at, last_login_at`

func scanAdmin(row interface{ Scan(...any) error }) (*Admin, error) {
	var a Admin
	var created int64
	var last sql.NullInt64
	if err := row.Scan(&a.ID, &a.Email, &a.PasswordHash, &created, &last); err != nil {
		return nil, err
	}
	a.CreatedAt = fromMS(created)
	a.LastLoginAt = timePtr(last)
	return &a, nil
}

// AdminByEmail finds an admin by (lowercased) email.
func (t *Tx) AdminByEmail(ctx context.Context, email string) (*Admin, error) {
	a, err := scanAdmin(t.q.QueryRowContext(ctx, `SELECT `+adminCols+` FROM admins WHERE email = ?`, email))
	return a, mapErr("admin by email", err)
}

// AdminByID finds an admin by ID.
func (t *Tx) AdminByID(ctx context.Context, id string) (*Admin, error) {
	a, err := scanAdmin(t.q.QueryRowContext(ctx, `SELECT `+adminCols+` FROM admins WHERE id = ?`, id))
	return a, mapErr("admin by id", err)
}

// TouchAdminLogin records a successful portal sign-in.
func (t *Tx) TouchAdminLogin(ctx context.Context, id string, at time.Time) error {
	_, err := t.q.ExecContext(ctx, `UPDATE admins SET last_login_at = ? WHERE id = ?`, ms(at), id)
	return mapErr("touch admin login", err)
}

// RehashAdminPassword replaces an admin's password hash with a new hash
// of the same password, only while the stored hash is still oldHash.
func (t *Tx) RehashAdminPassword(ctx context.Context, adminID, oldHash, newHash string) error {
	_, err := t.q.ExecContext(ctx, `UPDATE admins SET password_hash = ? WHERE id = ? AND password_hash = ?`, newHash, adminID, oldHash)
	return mapErr("rehash admin password", err)
}
