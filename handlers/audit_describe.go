package handlers

import (
	"encoding/json"

	"latchkey/hooks"
	"latchkey/store"
	"latchkey/views"
)

// auditDescribe fills an audit row's plain description of its type and
// the user's login ID as the event's payload carried it.
func auditDescribe(e *store.Event, r *views.AuditRow) {
	for _, ti := range hooks.Types {
		if ti.Type == e.Type {
			r.Description = ti.Description
			break
		}
	}
	var p struct {
		User struct {
			Attrs map[string]any `json:"standard_attributes"`
		} `json:"user"`
	}
	if json.Unmarshal(e.Payload, &p) == nil {
		for _, k := range []string{"email", "phone_number", "preferred_username"} {
			if v, ok := p.User.Attrs[k].(string); ok && v != "" {
				r.LoginID = v
				return
			}
		}
	}
}

// auditVia names where an actor of this kind acts.
func auditVia(kind string) string {
	switch kind {
	case "admin":
		return "Portal"
	case "api_key":
		return "Admin API"
	case "user":
		return "Auth UI"
	case "system":
		return "Latchkey"
	}
	return ""
}
