package account

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"latchkey/store"
)

// Export formats.
const (
	ExportCSV    = "csv"
	ExportNDJSON = "ndjson"
)

// EventAdminExportUsers is recorded (audit only) after every export: who
// took which users' data out.
const EventAdminExportUsers = "admin_api.export_users.executed"

// ExportColumns are the CSV header. Never a password or a hash.
var ExportColumns = []string{"id", "email", "phone_number", "preferred_username", "login_ids", "name", "given_name", "family_name",
	"created_at", "updated_at", "last_login_at", "is_disabled", "disable_reason", "has_password", "must_change_password", "locked", "password_email_failed"}

// ExportUsers writes every user params selects (search and filters; its
// cursors and limit are ignored) to w as CSV or NDJSON (by user ID, or
// newest first with a search),
// streaming from one query so a million users never sit in memory. It
// records admin_api.export_users.executed with the count when done.
func (s *Service) ExportUsers(ctx context.Context, actor Actor, w io.Writer, format string, params store.ListUsersParams) (int, error) {
	if format != ExportCSV && format != ExportNDJSON {
		return 0, fieldErr("format", ReasonValidationFailed, "Choose csv or ndjson.", map[string]any{"kind": "enum", "enum": []string{ExportCSV, ExportNDJSON}})
	}
	params.After, params.Before, params.Limit = "", "", 0
	now := s.Now()
	params.Now = now
	bw := bufio.NewWriterSize(w, 64<<10)
	var write func(u *store.UserSummary) error
	flush := func() error { return nil }
	switch format {
	case ExportCSV:
		cw := csv.NewWriter(bw)
		if err := cw.Write(ExportColumns); err != nil {
			return 0, err
		}
		rec := make([]string, len(ExportColumns))
		write = func(u *store.UserSummary) error {
			email, phone, username := firstOfKinds(u)
			rec[0], rec[1], rec[2], rec[3] = u.ID, cell(email), cell(phone), cell(username)
			ids := make([]string, len(u.LoginIDs))
			for i, v := range u.LoginIDs {
				ids[i] = u.LoginIDKinds[i] + ":" + v
			}
			rec[4] = cell(strings.Join(ids, " "))
			rec[5], rec[6], rec[7] = cell(u.Name), cell(u.GivenName), cell(u.FamilyName)
			rec[8], rec[9], rec[10] = u.CreatedAt.Format(time.RFC3339), u.UpdatedAt.Format(time.RFC3339), ""
			if u.LastLoginAt != nil {
				rec[10] = u.LastLoginAt.Format(time.RFC3339)
			}
			rec[11], rec[12] = strconv.FormatBool(u.IsDisabled), cell(u.DisableReason)
			rec[13], rec[14] = strconv.FormatBool(u.HasPassword), strconv.FormatBool(ExpiredAt(u.ExpireAfter, now))
			rec[15], rec[16] = strconv.FormatBool(u.Locked), strconv.FormatBool(u.EmailFailed)
			return cw.Write(rec)
		}
		flush = func() error { cw.Flush(); return cw.Error() }
	default:
		var line []byte
		write = func(u *store.UserSummary) error {
			line = appendExportJSON(line[:0], u, now)
			_, err := bw.Write(line)
			return err
		}
	}
	n := 0
	err := s.pipeUsers(ctx, params, func(u *store.UserSummary) error {
		n++
		return write(u)
	})
	if err != nil {
		return n, fmt.Errorf("account: export users: %w", err)
	}
	if err := flush(); err != nil {
		return n, err
	}
	return n, s.finishExport(ctx, actor, bw, format, params, n)
}

func (s *Service) finishExport(ctx context.Context, actor Actor, bw *bufio.Writer, format string, params store.ListUsersParams, n int) error {
	if err := bw.Flush(); err != nil {
		return err
	}
	f := params.Filters
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		return s.events.Record(ctx, tx, actor, Event{Type: EventAdminExportUsers, Payload: map[string]any{
			"format": format, "count": n, "search": params.Search,
			"filters": map[string]bool{"disabled": f.Disabled, "must_change_password": f.MustChange, "locked": f.Locked,
				"password_email_failed": f.EmailFailed, "no_password": f.NoPassword}}})
	})
	if err != nil {
		return err
	}
	s.log.Info("users exported", "format", format, "count", n, "actor", actor.Kind, "actor_id", actor.ID, "search", params.Search != "")
	return nil
}

// cell keeps a CSV cell from being read as a formula by a spreadsheet:
// one starting with = @ or a control character, or with + or - followed
// by anything but a phone number's digits, gets a leading apostrophe.
func cell(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '@', '\t', '\r':
		return "'" + v
	case '+', '-':
		if strings.Trim(v[1:], "0123456789") != "" {
			return "'" + v
		}
	}
	return v
}

func firstOfKinds(u *store.UserSummary) (email, phone, username string) {
	for i, k := range u.LoginIDKinds {
		switch {
		case k == KindEmail && email == "":
			email = u.LoginIDs[i]
		case k == KindPhone && phone == "":
			phone = u.LoginIDs[i]
		case k == KindUsername && username == "":
			username = u.LoginIDs[i]
		}
	}
	return
}

// exportRecord is one NDJSON line, shaped like the reference's user
// export: sub, standard attributes, identities, and status. The export
// writes it with appendExportJSON (export_json.go), which a test holds to
// encoding/json's output for this struct.
type exportRecord struct {
	Sub                 string           `json:"sub"`
	Email               string           `json:"email,omitempty"`
	PhoneNumber         string           `json:"phone_number,omitempty"`
	PreferredUsername   string           `json:"preferred_username,omitempty"`
	Name                string           `json:"name,omitempty"`
	GivenName           string           `json:"given_name,omitempty"`
	FamilyName          string           `json:"family_name,omitempty"`
	CreatedAt           string           `json:"created_at"`
	UpdatedAt           string           `json:"updated_at"`
	LastLoginAt         string           `json:"last_login_at,omitempty"`
	IsDisabled          bool             `json:"is_disabled"`
	DisableReason       string           `json:"disable_reason,omitempty"`
	HasPassword         bool             `json:"has_password"`
	MustChangePassword  bool             `json:"must_change_password"`
	Locked              bool             `json:"locked"`
	PasswordEmailFailed bool             `json:"password_email_failed"`
	Identities          []exportIdentity `json:"identities"`
}

type exportIdentity struct {
	Type    string        `json:"type"`
	LoginID exportLoginID `json:"login_id"`
	Claims  exportClaims  `json:"claims"`
}

type exportLoginID struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

type exportClaims struct {
	Email             string `json:"email,omitempty"`
	PhoneNumber       string `json:"phone_number,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
}

func newExportRecord(u *store.UserSummary, now time.Time) exportRecord {
	email, phone, username := firstOfKinds(u)
	rec := exportRecord{Sub: u.ID, Email: email, PhoneNumber: phone, PreferredUsername: username,
		Name: u.Name, GivenName: u.GivenName, FamilyName: u.FamilyName,
		CreatedAt: u.CreatedAt.Format(time.RFC3339), UpdatedAt: u.UpdatedAt.Format(time.RFC3339),
		IsDisabled: u.IsDisabled, DisableReason: u.DisableReason, HasPassword: u.HasPassword,
		MustChangePassword: ExpiredAt(u.ExpireAfter, now), Locked: u.Locked, PasswordEmailFailed: u.EmailFailed,
		Identities: make([]exportIdentity, len(u.LoginIDs))}
	if u.LastLoginAt != nil {
		rec.LastLoginAt = u.LastLoginAt.Format(time.RFC3339)
	}
	for i, v := range u.LoginIDs {
		k := u.LoginIDKinds[i]
		id := exportIdentity{Type: "login_id", LoginID: exportLoginID{Key: k, Type: k, Value: v}}
		switch k {
		case KindEmail:
			id.Claims.Email = v
		case KindPhone:
			id.Claims.PhoneNumber = v
		default:
			id.Claims.PreferredUsername = v
		}
		rec.Identities[i] = id
	}
	return rec
}

// exportBatch is how many users pass from the database reader to the
// encoder at a time.
const exportBatch = 512

// pipeUsers walks the users params selects (EachUserForExport), but reads
// the database on one goroutine and calls fn on another, handing over
// batches of exportBatch users: reading (SQLite, through cgo) and
// encoding then run on two cores at once instead of taking turns. A few
// batches are in flight at most, so memory stays flat however many users
// there are. An error from fn stops the walk and is returned.
func (s *Service) pipeUsers(ctx context.Context, params store.ListUsersParams, fn func(*store.UserSummary) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const inFlight = 4
	full := make(chan []store.UserSummary, inFlight)
	free := make(chan []store.UserSummary, inFlight+2)
	var fnErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range full {
			for i := 0; fnErr == nil && i < len(b); i++ {
				if fnErr = fn(&b[i]); fnErr != nil {
					cancel() // stop the reader; keep draining so it never blocks
				}
			}
			select {
			case free <- b[:0]:
			default:
			}
		}
	}()
	var cur []store.UserSummary
	err := s.store.EachUserForExport(ctx, params, func(u *store.UserSummary) error {
		if cur == nil {
			select {
			case cur = <-free:
			default:
				cur = make([]store.UserSummary, 0, exportBatch)
			}
		}
		cur = append(cur, *u)
		if len(cur) == exportBatch {
			select {
			case full <- cur:
			case <-ctx.Done():
				return ctx.Err()
			}
			cur = nil
		}
		return nil
	})
	if err == nil && len(cur) > 0 {
		full <- cur // the encoder drains until full is closed
	}
	close(full)
	<-done
	if fnErr != nil {
		return fnErr
	}
	return err
}
