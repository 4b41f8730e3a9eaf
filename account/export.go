package account

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
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
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		write = func(u *store.UserSummary) error {
			return enc.Encode(exportRecord(u, now))
		}
	}
	n := 0
	err := s.store.EachUser(ctx, params, func(u *store.UserSummary) error {
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
// export: sub, standard attributes, identities, and status.
func exportRecord(u *store.UserSummary, now time.Time) map[string]any {
	email, phone, username := firstOfKinds(u)
	rec := map[string]any{"sub": u.ID, "created_at": u.CreatedAt.Format(time.RFC3339), "updated_at": u.UpdatedAt.Format(time.RFC3339),
		"is_disabled": u.IsDisabled, "has_password": u.HasPassword, "must_change_password": ExpiredAt(u.ExpireAfter, now),
		"locked": u.Locked, "password_email_failed": u.EmailFailed}
	for k, v := range map[string]string{"email": email, "phone_number": phone, "preferred_username": username,
		"name": u.Name, "given_name": u.GivenName, "family_name": u.FamilyName, "disable_reason": u.DisableReason} {
		if v != "" {
			rec[k] = v
		}
	}
	if u.LastLoginAt != nil {
		rec["last_login_at"] = u.LastLoginAt.Format(time.RFC3339)
	}
	ids := make([]map[string]any, len(u.LoginIDs))
	for i, v := range u.LoginIDs {
		ids[i] = map[string]any{"type": "login_id", "login_id": map[string]any{"key": u.LoginIDKinds[i], "type": u.LoginIDKinds[i], "value": v},
			"claims": map[string]any{LoginIDClaim(u.LoginIDKinds[i]): v}}
	}
	rec["identities"] = ids
	return rec
}
