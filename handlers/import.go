package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"latchkey/account"
)

// importPath is the user import's route; the router's 2 MB body limit
// skips it for importBodyLimit.
const importPath = "/_api/admin/users/import"

// importBodyLimit bounds an import request: 10,000 records with bcrypt
// hashes, long login IDs and pretty-printed JSON stay well under it.
const importBodyLimit = 8 << 20

// importWriteTimeout replaces the server's 60 s write timeout for imports:
// plaintext passwords are hashed with bcrypt during the request, on every
// core, which for 10,000 of them at cost 10 takes minutes on a small
// machine. Pre-hashed (bcrypt) records take about a second.
const importWriteTimeout = 30 * time.Minute

// importRequest is the body of POST /_api/admin/users/import. Records name
// their login ID the way the reference user object does (email,
// phone_number, preferred_username); identifier picks one when a record
// has several. password is plaintext, or the reference's
// {"type": "bcrypt", "password_hash": "..."}; password_hash is the bcrypt
// hash directly.
type importRequest struct {
	Upsert     bool           `json:"upsert"`
	Identifier string         `json:"identifier"`
	Records    []importRecord `json:"records"`
}

type importRecord struct {
	Email              string          `json:"email"`
	PhoneNumber        string          `json:"phone_number"`
	PreferredUsername  string          `json:"preferred_username"`
	Password           json.RawMessage `json:"password"`
	PasswordHash       string          `json:"password_hash"`
	SetPasswordExpired bool            `json:"set_password_expired"`
}

type importResultJSON struct {
	Index   int          `json:"index"`
	Outcome string       `json:"outcome"`
	UserID  string       `json:"user_id,omitempty"`
	Error   *importError `json:"error,omitempty"`
}

type importError struct {
	Name    string         `json:"errorName"`
	Reason  string         `json:"reason"`
	Message string         `json:"message"`
	Field   string         `json:"field,omitempty"`
	Info    map[string]any `json:"info,omitempty"`
}

var identifierKinds = map[string]string{"email": account.KindEmail, "phone_number": account.KindPhone, "preferred_username": account.KindUsername}

// toImportRecord maps one JSON record onto the domain's; a record it
// cannot map gets an error the caller reports for that record alone.
func toImportRecord(r importRecord, identifier string) (account.ImportRecord, *account.Error) {
	var out account.ImportRecord
	values := map[string]string{"email": r.Email, "phone_number": r.PhoneNumber, "preferred_username": r.PreferredUsername}
	if identifier != "" {
		out.LoginIDKey, out.LoginIDValue = identifierKinds[identifier], values[identifier]
	} else {
		n := 0
		for _, k := range []string{"email", "phone_number", "preferred_username"} {
			if values[k] != "" {
				out.LoginIDKey, out.LoginIDValue = identifierKinds[k], values[k]
				n++
			}
		}
		if n > 1 {
			return out, &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "identifier",
				Message: `The record has several login IDs; set "identifier" to email, phone_number or preferred_username.`}
		}
	}
	if out.LoginIDValue == "" {
		return out, &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "loginID",
			Message: "The record has no login ID: give email, phone_number or preferred_username."}
	}
	out.PasswordHash, out.SetPasswordExpired = r.PasswordHash, r.SetPasswordExpired
	if raw := bytes.TrimSpace(r.Password); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		var plain string
		if err := json.Unmarshal(raw, &plain); err == nil {
			out.Password = plain
		} else {
			var obj struct {
				Type         string `json:"type"`
				PasswordHash string `json:"password_hash"`
			}
			if err := json.Unmarshal(raw, &obj); err != nil || obj.Type != "bcrypt" || obj.PasswordHash == "" {
				return out, &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "password",
					Message: `password is a plaintext string or {"type": "bcrypt", "password_hash": "..."}.`}
			}
			if out.PasswordHash != "" {
				return out, &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "password",
					Message: "Give either password or password_hash, not both."}
			}
			out.PasswordHash = obj.PasswordHash
		}
	}
	return out, nil
}

func toImportError(e *account.Error) *importError {
	if e == nil {
		return nil
	}
	return &importError{Name: e.Name, Reason: e.Reason, Message: e.Message, Field: e.Field, Info: e.Info}
}

// usersImport imports users for an Admin API key: up to 10,000 records in
// one transaction, a result per record. No user.pre_create or user.created
// is fired; one admin_api.import_users.executed event is recorded.
func (s *Server) usersImport(c echo.Context) error {
	actor, ok := APIActor(c)
	if !ok {
		return echo.NewHTTPError(http.StatusUnauthorized, "Send a valid Admin API key.")
	}
	if err := http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(importWriteTimeout)); err != nil {
		s.log.Warn("import: cannot extend the write deadline", "err", err)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, importBodyLimit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return importFail(c, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("The request is over %d MB; send fewer records per request.", importBodyLimit>>20))
		}
		return importFail(c, http.StatusBadRequest, "BadRequest", "The request body could not be read.")
	}
	var req importRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return importFail(c, http.StatusBadRequest, "BadRequest", "The body is not an import request: "+err.Error()+`. Send {"upsert": false, "records": [{"email": "...", "password_hash": "$2a$..."}]}.`)
	}
	if len(req.Records) == 0 {
		return importFail(c, http.StatusBadRequest, account.ReasonValidationFailed, "There are no records to import.")
	}
	if len(req.Records) > account.MaxImportRecords {
		return importFail(c, http.StatusBadRequest, account.ReasonValidationFailed,
			fmt.Sprintf("An import takes at most %d records; this one has %d. Split it into several requests.", account.MaxImportRecords, len(req.Records)))
	}
	if req.Identifier != "" && identifierKinds[req.Identifier] == "" {
		return importFail(c, http.StatusBadRequest, "ValidationFailed", `identifier must be email, phone_number or preferred_username.`)
	}
	recs := make([]account.ImportRecord, 0, len(req.Records))
	mapErrs := map[int]*account.Error{}
	var index []int // index into req.Records of each domain record
	for i, r := range req.Records {
		rec, e := toImportRecord(r, req.Identifier)
		if e != nil {
			mapErrs[i] = e
			continue
		}
		recs = append(recs, rec)
		index = append(index, i)
	}
	var results []account.ImportResult
	if len(recs) > 0 {
		var err error
		results, _, err = s.acct.ImportUsers(c.Request().Context(), actor, recs, req.Upsert)
		if ae, ok := account.AsError(err); ok {
			return importFail(c, http.StatusBadRequest, ae.Reason, ae.Message)
		} else if err != nil {
			return err
		}
	}
	out := make([]importResultJSON, len(req.Records))
	sum := map[string]int{"total": len(req.Records), account.ImportCreated: 0, account.ImportUpdated: 0, account.ImportSkipped: 0, account.ImportFailed: 0}
	for i, e := range mapErrs {
		out[i] = importResultJSON{Index: i, Outcome: account.ImportFailed, Error: toImportError(e)}
	}
	for j, r := range results {
		i := index[j]
		out[i] = importResultJSON{Index: i, Outcome: r.Outcome, UserID: r.UserID, Error: toImportError(r.Error)}
	}
	for _, r := range out {
		sum[r.Outcome]++
	}
	return c.JSON(http.StatusOK, map[string]any{"summary": sum, "results": out})
}

func importFail(c echo.Context, status int, reason, msg string) error {
	return c.JSON(status, map[string]any{"errors": []map[string]any{{
		"message":    msg,
		"extensions": map[string]any{"errorName": "Invalid", "reason": reason},
	}}})
}
