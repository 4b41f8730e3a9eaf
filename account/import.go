package account

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"

	"latchkey/store"
)

// MaxImportRecords is the most records one import takes.
const MaxImportRecords = 10000

// ImportRecord is one user to import: a login ID and at most one of a
// plaintext Password or a bcrypt PasswordHash.
type ImportRecord struct {
	LoginIDKey         string
	LoginIDValue       string
	Password           string
	PasswordHash       string
	SetPasswordExpired bool
}

// Import outcomes.
const (
	ImportCreated = "created"
	ImportUpdated = "updated"
	ImportSkipped = "skipped"
	ImportFailed  = "failed"
)

// ImportResult is what became of one record.
type ImportResult struct {
	Index   int
	Outcome string
	UserID  string
	// Error says why the record failed (Outcome "failed") or was skipped.
	Error *Error
}

// ImportSummary counts the outcomes.
type ImportSummary struct {
	Created, Updated, Skipped, Failed int
}

type importRow struct {
	rec  ImportRecord
	id   LoginID
	hash string // stored form, "" = no password given
}

// ImportUsers imports up to MaxImportRecords users in one transaction. New
// login IDs become users; an existing one is skipped (insert-only) or has
// its password and expiry replaced (upsert). Each record gets a result; a
// bad record fails alone. As in the reference product, an import fires
// neither user.pre_create nor user.created: it writes one audit event,
// admin_api.import_users.executed, with the counts.
//
// Plaintext passwords are hashed here at the configured bcrypt cost, on
// every core; pre-hashed bcrypt passwords are stored as they are, which is
// what makes a large import fast.
func (s *Service) ImportUsers(ctx context.Context, actor Actor, recs []ImportRecord, upsert bool) ([]ImportResult, ImportSummary, error) {
	var sum ImportSummary
	if len(recs) == 0 {
		return nil, sum, &Error{Name: "Invalid", Reason: ReasonValidationFailed, Field: "records", Message: "There are no records to import."}
	}
	if len(recs) > MaxImportRecords {
		return nil, sum, &Error{Name: "Invalid", Reason: ReasonValidationFailed, Field: "records",
			Message: fmt.Sprintf("An import takes at most %d records; this one has %d. Split it into several requests.", MaxImportRecords, len(recs))}
	}
	results := make([]ImportResult, len(recs))
	rows := make([]*importRow, len(recs))
	seen := make(map[string]int, len(recs))
	var toHash []int
	for i, rec := range recs {
		results[i] = ImportResult{Index: i}
		fail := func(e *Error) { results[i].Outcome, results[i].Error = ImportFailed, e }
		id, err := NormalizeLoginID(rec.LoginIDKey, rec.LoginIDValue, s.cfg.PhoneRegion)
		if err != nil {
			fail(err.(*Error))
			continue
		}
		if j, dup := seen[id.Norm]; dup {
			fail(&Error{Name: "Invalid", Reason: ReasonInvariantViolated, Field: "loginID",
				Message: fmt.Sprintf("This login ID is also in record %d (counting from 0) of this import.", j), Info: map[string]any{"cause": map[string]any{"kind": "DuplicatedIdentity"}}})
			continue
		}
		row := &importRow{rec: rec, id: id}
		switch {
		case rec.Password != "" && rec.PasswordHash != "":
			fail(fieldErr("password", ReasonValidationFailed, "Give either password or password_hash, not both.", nil))
			continue
		case rec.PasswordHash != "":
			h, err := s.hasher.ImportHash(rec.PasswordHash)
			if errors.Is(err, ErrBcryptCostTooHigh) {
				fail(fieldErr("password_hash", ReasonValidationFailed, fmt.Sprintf("password_hash has a bcrypt cost over %d (this server's cost plus 2): every sign-in would take too long. Rehash it at a lower cost, or import the password itself.", s.hasher.MaxImportCost()), nil))
				continue
			} else if err != nil {
				fail(fieldErr("password_hash", ReasonValidationFailed, "password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$).", nil))
				continue
			}
			row.hash = h
		case rec.Password != "":
			if len([]rune(rec.Password)) > MaxPasswordLength {
				fail(fieldErr("password", ReasonValidationFailed, fmt.Sprintf("A password can be at most %d characters.", MaxPasswordLength), nil))
				continue
			}
			toHash = append(toHash, i)
		}
		seen[id.Norm] = i
		rows[i] = row
	}
	if err := s.hashAll(ctx, recs, rows, toHash); err != nil {
		return nil, sum, err
	}

	now := s.Now()
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		norms := make([]string, 0, len(seen))
		for n := range seen {
			norms = append(norms, n)
		}
		owners, err := tx.IdentityOwners(ctx, norms)
		if err != nil {
			return err
		}
		var fresh []store.ImportedUser
		for i, row := range rows {
			if row == nil {
				continue
			}
			var expire *time.Time
			if row.rec.SetPasswordExpired {
				expire = &now
			}
			if owner, ok := owners[row.id.Norm]; ok {
				results[i].UserID = owner
				if !upsert {
					results[i].Outcome = ImportSkipped
					results[i].Error = &Error{Name: "Invalid", Reason: ReasonInvariantViolated, Field: "loginID", Message: "A user with this login ID exists; insert-only mode leaves it unchanged.",
						Info: map[string]any{"cause": map[string]any{"kind": "DuplicatedIdentity"}}}
					continue
				}
				switch {
				case row.hash != "":
					if err := setPassword(ctx, tx, store.Password{UserID: owner, Hash: row.hash, CreatedAt: now, UpdatedAt: now, ExpireAfter: expire, SetByAdmin: true}); err != nil {
						return err
					}
					// As with an admin reset, whoever held the old password
					// is signed out.
					if _, err := tx.DeleteUserSessions(ctx, owner, ""); err != nil {
						return err
					}
				case row.rec.SetPasswordExpired:
					if err := tx.SetPasswordExpireAfter(ctx, owner, expire, now); errors.Is(err, store.ErrNotFound) {
						results[i].Outcome = ImportFailed
						results[i].Error = fieldErr("set_password_expired", ReasonValidationFailed, "This user has no password to expire.", nil)
						continue
					} else if err != nil {
						return err
					}
				default:
					results[i].Outcome = ImportSkipped
					results[i].Error = &Error{Name: "Invalid", Reason: ReasonValidationFailed, Message: "Nothing to update: the record has no password and no set_password_expired."}
					continue
				}
				if err := tx.TouchUser(ctx, owner, now); err != nil {
					return err
				}
				results[i].Outcome = ImportUpdated
				continue
			}
			if row.rec.SetPasswordExpired && row.hash == "" {
				results[i].Outcome = ImportFailed
				results[i].Error = fieldErr("set_password_expired", ReasonValidationFailed, "A user without a password cannot be asked to change it.", nil)
				continue
			}
			// Time-ordered (v7) UUIDs: every index the rows touch grows at
			// its end instead of at random pages, which keeps a big import
			// inside SQLite's page cache.
			u := store.ImportedUser{User: store.User{ID: newOrderedID(), CreatedAt: now, UpdatedAt: now}}
			u.Identity = store.Identity{ID: newOrderedID(), UserID: u.User.ID, Kind: row.id.Kind, Value: row.id.Value, ValueNorm: row.id.Norm, CreatedAt: now}
			if row.hash != "" {
				u.Password = &store.Password{UserID: u.User.ID, Hash: row.hash, CreatedAt: now, UpdatedAt: now, ExpireAfter: expire, SetByAdmin: true}
			}
			fresh = append(fresh, u)
			results[i].Outcome, results[i].UserID = ImportCreated, u.User.ID
		}
		if err := tx.InsertImportedUsers(ctx, fresh); err != nil {
			return err
		}
		sum = ImportSummary{}
		for _, r := range results {
			switch r.Outcome {
			case ImportCreated:
				sum.Created++
			case ImportUpdated:
				sum.Updated++
			case ImportSkipped:
				sum.Skipped++
			default:
				sum.Failed++
			}
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminImportUsers, Payload: map[string]any{
			"upsert": upsert, "records": len(recs), "created": sum.Created, "updated": sum.Updated, "skipped": sum.Skipped, "failed": sum.Failed}})
	})
	if err != nil {
		return nil, ImportSummary{}, fmt.Errorf("account: import users: %w", err)
	}
	s.log.Info("users imported", "actor", actor.Kind, "actor_id", actor.ID, "records", len(recs), "upsert", upsert,
		"created", sum.Created, "updated", sum.Updated, "skipped", sum.Skipped, "failed", sum.Failed)
	return results, sum, nil
}

// hashAll hashes the plaintext passwords of the records at idx, on every core.
func (s *Service) hashAll(ctx context.Context, recs []ImportRecord, rows []*importRow, idx []int) error {
	if len(idx) == 0 {
		return nil
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range min(runtime.GOMAXPROCS(0), len(idx)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				h, err := s.hasher.Hash(recs[i].Password)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					continue
				}
				rows[i].hash = h
			}
		}()
	}
	for _, i := range idx {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// newOrderedID is a UUIDv7: still a UUID, but in creation order.
func newOrderedID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
