package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"latchkey/store"
)

// ErrInvalidAPIKey is the one answer to a missing, malformed, unknown,
// wrong or revoked Admin API key, so a caller learns nothing about which.
var ErrInvalidAPIKey = errors.New("account: invalid API key")

// apiKeyPrefix starts every Admin API key, so a leaked key is easy to spot
// in logs and by secret scanners.
const apiKeyPrefix = "lk_"

// apiKeyTouchEvery limits last-used writes to one per key per interval, so
// a busy integration does not turn every read into a write.
const apiKeyTouchEvery = time.Minute

// APIKeyWithSecret is a newly created key and the full token, shown once.
type APIKeyWithSecret struct {
	Key   store.APIKey
	Token string
}

// CreateAPIKey makes a named Admin API key. The token (lk_<id>_<secret>)
// is returned once; only the SHA-256 of the secret is stored.
func (s *Service) CreateAPIKey(ctx context.Context, actor Actor, name string) (*APIKeyWithSecret, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, fieldErr("name", ReasonValidationFailed, "Give the key a name, e.g. the script or service that uses it.", nil)
	case len(name) > 100:
		return nil, fieldErr("name", ReasonValidationFailed, "The name can be at most 100 characters.", nil)
	}
	secret := NewToken()
	id := strings.ReplaceAll(uuid.NewString(), "-", "")
	k := store.APIKey{ID: id, Name: name, SecretHash: hashToken(secret), CreatedAt: s.Now(), CreatedBy: actor.Name}
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertAPIKey(ctx, k); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAPIKeyCreated, Payload: map[string]any{"api_key": map[string]any{"id": id, "name": name}}})
	})
	if err != nil {
		return nil, fmt.Errorf("account: create api key: %w", err)
	}
	return &APIKeyWithSecret{Key: k, Token: apiKeyPrefix + id + "_" + secret}, nil
}

// ListAPIKeys lists every Admin API key, newest first.
func (s *Service) ListAPIKeys(ctx context.Context) ([]store.APIKey, error) {
	return s.store.ListAPIKeys(ctx)
}

// RevokeAPIKey stops a key from authenticating, at once and for good.
func (s *Service) RevokeAPIKey(ctx context.Context, actor Actor, id string) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		k, err := tx.APIKeyByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return &Error{Name: "NotFound", Reason: "APIKeyNotFound", Message: "There is no such API key."}
		} else if err != nil {
			return err
		}
		if k.RevokedAt != nil {
			return nil
		}
		if err := tx.RevokeAPIKey(ctx, id, s.Now()); err != nil {
			return err
		}
		return s.events.Record(ctx, tx, actor, Event{Type: EventAPIKeyRevoked, Payload: map[string]any{"api_key": map[string]any{"id": k.ID, "name": k.Name}}})
	})
}

// AuthenticateAPIKey checks a bearer token and returns its key. Every
// failure is ErrInvalidAPIKey. The secret's hash is compared in constant
// time, and an unknown ID costs the same hash and compare as a known one.
// A successful use updates the key's last-used time and IP (at most once a
// minute, or when the IP changes).
func (s *Service) AuthenticateAPIKey(ctx context.Context, token, ip string) (*store.APIKey, error) {
	rest, ok := strings.CutPrefix(token, apiKeyPrefix)
	if !ok {
		return nil, ErrInvalidAPIKey
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 32 || secret == "" || len(secret) > 100 || !isHex(id) {
		return nil, ErrInvalidAPIKey
	}
	got := hashToken(secret)
	k, err := s.store.APIKeyByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		equalSecret(got, hashToken(""))
		return nil, ErrInvalidAPIKey
	} else if err != nil {
		return nil, err
	}
	if !equalSecret(got, k.SecretHash) || k.RevokedAt != nil {
		return nil, ErrInvalidAPIKey
	}
	now := s.Now()
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= apiKeyTouchEvery || k.LastUsedIP != ip {
		if err := s.store.TouchAPIKey(ctx, k.ID, now, ip); err != nil {
			return nil, err
		}
		k.LastUsedAt, k.LastUsedIP = &now, ip
	}
	return k, nil
}

func isHex(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// APIKeyActor is the actor for Admin API calls made with key k.
func APIKeyActor(k *store.APIKey, ip, userAgent string) Actor {
	return Actor{Kind: "api_key", ID: k.ID, Name: k.Name, TriggeredBy: "admin_api", IP: ip, UserAgent: userAgent}
}
