package adminapi

import (
	"context"
	"strings"

	graphql "github.com/graph-gophers/graphql-go"

	"latchkey/account"
)

// ---- Session ----

type sessionResolver struct{ s account.SessionInfo }

func sessionNodeID(s account.SessionInfo) graphql.ID { return NodeID("Session", s.UserID+":"+s.ID) }

func (r *sessionResolver) ID() graphql.ID           { return sessionNodeID(r.s) }
func (r *sessionResolver) Type() string             { return "IDP" }
func (r *sessionResolver) DisplayName() string      { return r.s.Browser }
func (r *sessionResolver) CreatedAt() DateTime      { return DateTime{r.s.CreatedAt} }
func (r *sessionResolver) LastAccessedAt() DateTime { return DateTime{r.s.LastSeenAt} }
func (r *sessionResolver) LastAccessedByIP() string { return r.s.IP }

func (u *userResolver) Sessions(ctx context.Context) ([]*sessionResolver, error) {
	list, err := u.acct.UserSessions(ctx, u.base.ID, nil)
	if err != nil {
		return nil, err
	}
	out := make([]*sessionResolver, 0, len(list))
	for _, s := range list {
		out = append(out, &sessionResolver{s})
	}
	return out, nil
}

func (n *nodeResolver) ToSession() (*sessionResolver, bool) { return nil, false }

// ---- Mutations ----

type identityPayload struct {
	u *userResolver
	i *identityResolver
}

func (p *identityPayload) User() *userResolver         { return p.u }
func (p *identityPayload) Identity() *identityResolver { return p.i }

func invalidIdentityID() error {
	return &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "identityID",
		Message: "This is not an identity ID: pass the global node ID (base64url of \"Identity:<id>\")."}
}

func identityIDFrom(id graphql.ID) (string, error) {
	typ, raw, ok := parseNodeID(id)
	if !ok || typ != "Identity" {
		return "", invalidIdentityID()
	}
	return raw, nil
}

type createIdentityArgs struct {
	Input struct {
		UserID     graphql.ID
		Definition struct {
			LoginID struct {
				Key   string
				Value string
			}
		}
	}
}

func (r *resolver) CreateIdentity(ctx context.Context, args createIdentityArgs) (*identityPayload, error) {
	id, err := userIDFrom(args.Input.UserID)
	if err != nil {
		return nil, r.wrapErr(ctx, "createIdentity", err)
	}
	l := args.Input.Definition.LoginID
	u, ident, err := r.acct.AddIdentity(ctx, actorFrom(ctx), id, l.Key, l.Value)
	if err != nil {
		return nil, r.wrapErr(ctx, "createIdentity", err)
	}
	return &identityPayload{r.userOf(u), &identityResolver{*ident}}, nil
}

type updateIdentityArgs struct {
	Input struct {
		UserID     graphql.ID
		IdentityID graphql.ID
		Definition struct {
			LoginID struct {
				Key   string
				Value string
			}
		}
	}
}

func (r *resolver) UpdateIdentity(ctx context.Context, args updateIdentityArgs) (*identityPayload, error) {
	uid, err := userIDFrom(args.Input.UserID)
	if err != nil {
		return nil, r.wrapErr(ctx, "updateIdentity", err)
	}
	iid, err := identityIDFrom(args.Input.IdentityID)
	if err != nil {
		return nil, r.wrapErr(ctx, "updateIdentity", err)
	}
	cur, err := r.acct.GetUser(ctx, uid)
	if err != nil {
		return nil, r.wrapErr(ctx, "updateIdentity", err)
	}
	l := args.Input.Definition.LoginID
	for _, i := range cur.Identities {
		if i.ID == iid && i.Kind != l.Key {
			return nil, r.wrapErr(ctx, "updateIdentity", &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "loginIDKey",
				Message: "An identity keeps its kind: this one is " + i.Kind + ". Create a new identity of the other kind instead.",
				Info:    map[string]any{"kind": "const", "key": i.Kind}})
		}
	}
	u, ident, err := r.acct.UpdateIdentity(ctx, actorFrom(ctx), uid, iid, l.Value)
	if err != nil {
		return nil, r.wrapErr(ctx, "updateIdentity", err)
	}
	return &identityPayload{r.userOf(u), &identityResolver{*ident}}, nil
}

type deleteIdentityArgs struct {
	Input struct {
		UserID     graphql.ID
		IdentityID graphql.ID
	}
}

func (r *resolver) DeleteIdentity(ctx context.Context, args deleteIdentityArgs) (*userPayload, error) {
	uid, err := userIDFrom(args.Input.UserID)
	if err != nil {
		return nil, r.wrapErr(ctx, "deleteIdentity", err)
	}
	iid, err := identityIDFrom(args.Input.IdentityID)
	if err != nil {
		return nil, r.wrapErr(ctx, "deleteIdentity", err)
	}
	u, err := r.acct.RemoveIdentity(ctx, actorFrom(ctx), uid, iid)
	if err != nil {
		return nil, r.wrapErr(ctx, "deleteIdentity", err)
	}
	return &userPayload{r.userOf(u)}, nil
}

type updateUserArgs struct {
	Input struct {
		UserID             graphql.ID
		StandardAttributes *JSON
	}
}

func (r *resolver) UpdateUser(ctx context.Context, args updateUserArgs) (*userPayload, error) {
	uid, err := userIDFrom(args.Input.UserID)
	if err != nil {
		return nil, r.wrapErr(ctx, "updateUser", err)
	}
	if args.Input.StandardAttributes == nil {
		u, err := r.acct.GetUser(ctx, uid)
		if err != nil {
			return nil, r.wrapErr(ctx, "updateUser", err)
		}
		return &userPayload{r.userOf(u)}, nil
	}
	attrs, ok := args.Input.StandardAttributes.V.(map[string]any)
	if !ok {
		return nil, r.wrapErr(ctx, "updateUser", &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "standardAttributes",
			Message: "standardAttributes must be an object."})
	}
	p, err := account.ProfileFromAttributes(attrs)
	if err != nil {
		return nil, r.wrapErr(ctx, "updateUser", err)
	}
	u, err := r.acct.UpdateProfile(ctx, actorFrom(ctx), uid, p)
	if err != nil {
		return nil, r.wrapErr(ctx, "updateUser", err)
	}
	return &userPayload{r.userOf(u)}, nil
}

type revokeSessionArgs struct {
	Input struct{ SessionID graphql.ID }
}

func (r *resolver) RevokeSession(ctx context.Context, args revokeSessionArgs) (*userPayload, error) {
	typ, raw, ok := parseNodeID(args.Input.SessionID)
	uid, sid, ok2 := strings.Cut(raw, ":")
	if !ok || !ok2 || typ != "Session" {
		return nil, r.wrapErr(ctx, "revokeSession", &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "sessionID",
			Message: "This is not a session ID: pass a Session's id from the user's sessions."})
	}
	if err := r.acct.RevokeSession(ctx, actorFrom(ctx), uid, sid); err != nil {
		return nil, r.wrapErr(ctx, "revokeSession", err)
	}
	u, err := r.acct.GetUser(ctx, uid)
	if err != nil {
		return nil, r.wrapErr(ctx, "revokeSession", err)
	}
	return &userPayload{r.userOf(u)}, nil
}

type revokeAllSessionsArgs struct {
	Input struct{ UserID graphql.ID }
}

func (r *resolver) RevokeAllSessions(ctx context.Context, args revokeAllSessionsArgs) (*userPayload, error) {
	uid, err := userIDFrom(args.Input.UserID)
	if err != nil {
		return nil, r.wrapErr(ctx, "revokeAllSessions", err)
	}
	if _, err := r.acct.RevokeAllSessions(ctx, actorFrom(ctx), uid); err != nil {
		return nil, r.wrapErr(ctx, "revokeAllSessions", err)
	}
	u, err := r.acct.GetUser(ctx, uid)
	if err != nil {
		return nil, r.wrapErr(ctx, "revokeAllSessions", err)
	}
	return &userPayload{r.userOf(u)}, nil
}
