package oidc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"latchkey/account"
	"latchkey/store"
)

// Application events, kept in the audit log.
const (
	EventApplicationCreated = "admin.application.created"
	EventApplicationUpdated = "admin.application.updated"
	EventApplicationDeleted = "admin.application.deleted"
	EventSigningKeyRotated  = "admin.signing_key.rotated"
)

// Scopes lists the scopes an application may be allowed, in order.
var Scopes = []string{oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopePhone, oidc.ScopeProfile, oidc.ScopeOfflineAccess}

// AppInput is what an admin types in the application form.
type AppInput struct {
	Name         string
	Confidential bool
	// RedirectURIs and PostLogoutRedirectURIs hold one URI per line.
	RedirectURIs           string
	PostLogoutRedirectURIs string
	Scopes                 []string
	Disabled               bool
}

// App is an application with the plaintext secret, set only right after
// it was made (creation or rotation).
type App struct {
	store.OIDCClient
	Secret string
}

func fieldErr(field, msg string) *account.Error {
	return &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Message: msg, Field: field}
}

// checkURIs parses one URI per line: absolute, no fragment, https, or
// http on a loopback host only.
func checkURIs(field, text string, required bool) ([]string, *account.Error) {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		u, err := url.Parse(line)
		if err != nil || u.Host == "" || u.Fragment != "" || strings.ContainsAny(line, " \t") {
			return nil, fieldErr(field, fmt.Sprintf("“%s” is not a valid URL. Enter full URLs like https://app.example.com/callback, one per line.", line))
		}
		switch u.Scheme {
		case "https":
		case "http":
			if !isLoopback(u.Hostname()) {
				return nil, fieldErr(field, fmt.Sprintf("“%s” uses http: only loopback addresses (localhost, 127.0.0.1, [::1]) may use http. Use https.", line))
			}
		default:
			return nil, fieldErr(field, fmt.Sprintf("“%s” must start with https:// (or http:// on localhost).", line))
		}
		if len(line) > 2000 {
			return nil, fieldErr(field, "A URL can be at most 2000 characters.")
		}
		if !slices.Contains(out, line) {
			out = append(out, line)
		}
	}
	if len(out) > 20 {
		return nil, fieldErr(field, "Enter at most 20 URLs.")
	}
	if required && len(out) == 0 {
		return nil, fieldErr(field, "Enter at least one redirect URI.")
	}
	return out, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validate checks in and fills c with it.
func validate(in AppInput, c *store.OIDCClient) error {
	var errs []*account.Error
	c.Name = strings.TrimSpace(in.Name)
	switch {
	case c.Name == "":
		errs = append(errs, fieldErr("name", "Give the application a name; users see it when they sign in."))
	case len(c.Name) > 100:
		errs = append(errs, fieldErr("name", "The name can be at most 100 characters."))
	}
	var e *account.Error
	if c.RedirectURIs, e = checkURIs("redirect_uris", in.RedirectURIs, true); e != nil {
		errs = append(errs, e)
	}
	if c.PostLogoutRedirectURIs, e = checkURIs("post_logout_redirect_uris", in.PostLogoutRedirectURIs, false); e != nil {
		errs = append(errs, e)
	}
	c.Scopes = []string{oidc.ScopeOpenID}
	for _, sc := range in.Scopes {
		if !slices.Contains(Scopes, sc) {
			errs = append(errs, fieldErr("scopes", fmt.Sprintf("“%s” is not a scope Latchkey knows.", sc)))
			continue
		}
		if !slices.Contains(c.Scopes, sc) {
			c.Scopes = append(c.Scopes, sc)
		}
	}
	c.Disabled = in.Disabled
	return account.JoinErrors(errs)
}

func appPayload(c *store.OIDCClient) map[string]any {
	typ := "public"
	if c.Confidential {
		typ = "confidential"
	}
	return map[string]any{"application": map[string]any{"client_id": c.ID, "name": c.Name, "client_type": typ,
		"redirect_uris": c.RedirectURIs, "post_logout_redirect_uris": c.PostLogoutRedirectURIs, "scopes": c.Scopes, "disabled": c.Disabled}}
}

func appNotFound() *account.Error {
	return &account.Error{Name: "NotFound", Reason: "ApplicationNotFound", Message: "There is no such application."}
}

// CreateApp registers an application. A confidential one gets a secret,
// returned once in App.Secret; only its hash is stored.
func (p *Provider) CreateApp(ctx context.Context, actor account.Actor, in AppInput) (*App, error) {
	now := p.now()
	app := &App{OIDCClient: store.OIDCClient{ID: newID(), Confidential: in.Confidential, CreatedAt: now, UpdatedAt: now}}
	if err := validate(in, &app.OIDCClient); err != nil {
		return nil, err
	}
	if app.Confidential {
		app.Secret = account.NewToken()
		app.SecretHash = hashSecret(app.Secret)
	}
	err := p.st.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertOIDCClient(ctx, &app.OIDCClient); err != nil {
			return err
		}
		return p.acct.Events().Record(ctx, tx, actor, account.Event{Type: EventApplicationCreated, Payload: appPayload(&app.OIDCClient)})
	})
	if err != nil {
		return nil, fmt.Errorf("oidc: create application: %w", err)
	}
	return app, nil
}

// App returns one application.
func (p *Provider) App(ctx context.Context, id string) (*store.OIDCClient, error) {
	c, err := p.st.OIDCClientByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, appNotFound()
	}
	return c, err
}

// Apps lists the applications by name.
func (p *Provider) Apps(ctx context.Context) ([]store.OIDCClient, error) {
	return p.st.ListOIDCClients(ctx)
}

// UpdateApp saves an edit (the client type and secret stay). Disabling an
// application stops its sign-ins at once and revokes its tokens.
func (p *Provider) UpdateApp(ctx context.Context, actor account.Actor, id string, in AppInput) (*store.OIDCClient, error) {
	var c *store.OIDCClient
	err := p.st.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if c, err = tx.OIDCClientByID(ctx, id); errors.Is(err, store.ErrNotFound) {
			return appNotFound()
		} else if err != nil {
			return err
		}
		in.Confidential = c.Confidential
		wasDisabled := c.Disabled
		if err := validate(in, c); err != nil {
			return err
		}
		c.UpdatedAt = p.now()
		if err := tx.UpdateOIDCClient(ctx, c); err != nil {
			return err
		}
		if c.Disabled && !wasDisabled {
			if err := tx.RevokeOIDCClientTokens(ctx, c.ID, c.UpdatedAt); err != nil {
				return err
			}
		}
		return p.acct.Events().Record(ctx, tx, actor, account.Event{Type: EventApplicationUpdated, Payload: appPayload(c)})
	})
	p.forgetClient(id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// RotateSecret gives a confidential application a new secret, returned
// once; the old one stops working at once.
func (p *Provider) RotateSecret(ctx context.Context, actor account.Actor, id string) (string, error) {
	secret := account.NewToken()
	err := p.st.InTx(ctx, func(tx *store.Tx) error {
		c, err := tx.OIDCClientByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return appNotFound()
		} else if err != nil {
			return err
		}
		if !c.Confidential {
			return fieldErr("", "A public application has no secret.")
		}
		now := p.now()
		if err := tx.SetOIDCClientSecret(ctx, id, hashSecret(secret), now); err != nil {
			return err
		}
		payload := appPayload(c)
		payload["secret_rotated"] = true
		return p.acct.Events().Record(ctx, tx, actor, account.Event{Type: EventApplicationUpdated, Payload: payload})
	})
	p.forgetClient(id)
	if err != nil {
		return "", err
	}
	return secret, nil
}

// DeleteApp removes an application with its pending sign-ins and tokens.
func (p *Provider) DeleteApp(ctx context.Context, actor account.Actor, id string) error {
	defer p.forgetClient(id)
	return p.st.InTx(ctx, func(tx *store.Tx) error {
		c, err := tx.OIDCClientByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return appNotFound()
		} else if err != nil {
			return err
		}
		if err := tx.DeleteOIDCClient(ctx, id); err != nil {
			return err
		}
		return p.acct.Events().Record(ctx, tx, actor, account.Event{Type: EventApplicationDeleted, Payload: appPayload(c)})
	})
}

// RotateKey makes a new signing key (RS256 or ES256) from the portal;
// the old one stays in JWKS until its tokens expire.
func (p *Provider) RotateKey(ctx context.Context, actor account.Actor, alg string) (string, error) {
	return p.keys.rotate(ctx, alg, func(tx *store.Tx, kid, alg string) error {
		return p.acct.Events().Record(ctx, tx, actor, account.Event{Type: EventSigningKeyRotated,
			Payload: map[string]any{"signing_key": map[string]any{"kid": kid, "alg": alg}}})
	})
}
