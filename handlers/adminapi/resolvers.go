package adminapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	graphql "github.com/graph-gophers/graphql-go"

	"latchkey/account"
	"latchkey/store"
)

// Paging limits for users(first:).
const (
	defaultFirst = 50
	maxFirst     = 100
)

type resolver struct {
	acct *account.Service
	log  *slog.Logger
}

// ---- IDs and cursors ----

// NodeID is the global node ID of a typed object: base64url without
// padding of "<Type>:<id>".
func NodeID(typ, id string) graphql.ID {
	return graphql.ID(base64.RawURLEncoding.EncodeToString([]byte(typ + ":" + id)))
}

// parseNodeID decodes a global node ID; it accepts padded base64url too.
func parseNodeID(id graphql.ID) (typ, raw string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(string(id), "="))
	if err != nil {
		return "", "", false
	}
	typ, raw, ok = strings.Cut(string(b), ":")
	return typ, raw, ok && typ != "" && raw != ""
}

func invalidID(field string) error {
	return &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: field,
		Message: "This is not a user ID: pass the global node ID (base64url of \"User:<id>\").",
		Info:    map[string]any{"causes": []map[string]any{{"kind": "format", "location": "/" + field, "details": map[string]any{"format": "id"}}}}}
}

// userIDFrom decodes a User node ID into the user's UUID.
func userIDFrom(id graphql.ID) (string, error) {
	typ, raw, ok := parseNodeID(id)
	if !ok || typ != "User" {
		return "", invalidID("userID")
	}
	return raw, nil
}

// usersCursor is what an opaque users cursor holds: the search it belongs
// to and the store's keyset position.
type usersCursor struct {
	Search string `json:"q"`
	After  string `json:"a"`
}

func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeUsersCursor(s, search string) (string, error) {
	bad := &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "after",
		Message: "This cursor is not valid for this search: pass an endCursor from the same users query.",
		Info:    map[string]any{"causes": []map[string]any{{"kind": "format", "location": "/after", "details": map[string]any{"format": "cursor"}}}}}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", bad
	}
	var c usersCursor
	if err := json.Unmarshal(b, &c); err != nil || c.Search != search || c.After == "" {
		return "", bad
	}
	return c.After, nil
}

// ---- scalars ----

// DateTime is the DateTime scalar: RFC 3339 in UTC.
type DateTime struct{ time.Time }

// ImplementsGraphQLType maps DateTime to the schema's scalar.
func (DateTime) ImplementsGraphQLType(name string) bool { return name == "DateTime" }

// UnmarshalGraphQL reads an RFC 3339 string.
func (t *DateTime) UnmarshalGraphQL(input any) error {
	s, ok := input.(string)
	if !ok {
		return fmt.Errorf("DateTime must be an RFC 3339 string")
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	t.Time = v
	return err
}

// MarshalJSON writes RFC 3339 in UTC.
func (t DateTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// JSON is any JSON value, for standardAttributes and claims.
type JSON struct{ V any }

// ImplementsGraphQLType maps JSON to the schema's JSON scalars.
func (JSON) ImplementsGraphQLType(name string) bool {
	return name == "UserStandardAttributes" || name == "IdentityClaims"
}

// UnmarshalGraphQL accepts any value.
func (j *JSON) UnmarshalGraphQL(input any) error { j.V = input; return nil }

// MarshalJSON writes the value.
func (j JSON) MarshalJSON() ([]byte, error) { return json.Marshal(j.V) }

// ---- Node ----

type nodeResolver struct {
	user     *userResolver
	identity *identityResolver
}

func (n *nodeResolver) ID() graphql.ID {
	if n.user != nil {
		return n.user.ID()
	}
	return n.identity.ID()
}

func (n *nodeResolver) ToUser() (*userResolver, bool)         { return n.user, n.user != nil }
func (n *nodeResolver) ToIdentity() (*identityResolver, bool) { return n.identity, n.identity != nil }

func (r *resolver) Node(ctx context.Context, args struct{ ID graphql.ID }) (*nodeResolver, error) {
	typ, raw, ok := parseNodeID(args.ID)
	if !ok {
		return nil, r.wrapErr(ctx, "node", invalidID("id"))
	}
	switch typ {
	case "User":
		u, err := r.acct.GetUser(ctx, raw)
		if e, ok := account.AsError(err); ok && e.Reason == account.ReasonUserNotFound {
			return nil, nil
		} else if err != nil {
			return nil, r.wrapErr(ctx, "node", err)
		}
		return &nodeResolver{user: r.userOf(u)}, nil
	}
	return nil, nil
}

func (r *resolver) Nodes(ctx context.Context, args struct{ IDs []graphql.ID }) ([]*nodeResolver, error) {
	if len(args.IDs) > maxFirst {
		return nil, r.wrapErr(ctx, "nodes", &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed,
			Message: fmt.Sprintf("Ask for at most %d nodes at once.", maxFirst)})
	}
	out := make([]*nodeResolver, len(args.IDs))
	for i, id := range args.IDs {
		n, err := r.Node(ctx, struct{ ID graphql.ID }{id})
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// ---- User ----

type userResolver struct {
	acct *account.Service
	base store.User
	// expireAfter is the password's expiry (nil: none or no password).
	expireAfter *time.Time
	// page, for users listed by users(), loads every listed user's
	// identities in one query; hasPassword comes from the list row.
	page        *pageLoader
	hasPassword bool

	once sync.Once
	full *account.User
	err  error
}

func (r *resolver) userOf(u *account.User) *userResolver {
	ur := &userResolver{acct: r.acct, base: u.User, full: u}
	if u.Password != nil {
		ur.expireAfter = u.Password.ExpireAfter
	}
	ur.once.Do(func() {})
	return ur
}

// load fetches identities and password state, once, only when a field
// needs them: for a listed user from the page's single batch query, else
// with GetUser.
func (u *userResolver) load(ctx context.Context) (*account.User, error) {
	u.once.Do(func() {
		if u.page == nil {
			u.full, u.err = u.acct.GetUser(ctx, u.base.ID)
			return
		}
		ids, err := u.page.load(ctx)
		if err != nil {
			u.err = err
			return
		}
		u.full = &account.User{User: u.base, Identities: ids[u.base.ID]}
		if u.hasPassword {
			u.full.Password = &store.Password{UserID: u.base.ID, ExpireAfter: u.expireAfter}
		}
	})
	return u.full, u.err
}

// pageLoader loads the identities of one page of users, once.
type pageLoader struct {
	acct *account.Service
	ids  []string
	once sync.Once
	out  map[string][]store.Identity
	err  error
}

func (p *pageLoader) load(ctx context.Context) (map[string][]store.Identity, error) {
	p.once.Do(func() { p.out, p.err = p.acct.Store().IdentitiesByUsers(ctx, p.ids) })
	return p.out, p.err
}

func (u *userResolver) ID() graphql.ID      { return NodeID("User", u.base.ID) }
func (u *userResolver) CreatedAt() DateTime { return DateTime{u.base.CreatedAt} }
func (u *userResolver) UpdatedAt() DateTime { return DateTime{u.base.UpdatedAt} }
func (u *userResolver) IsDisabled() bool    { return u.base.IsDisabled }
func (u *userResolver) LastLoginAt() *DateTime {
	if u.base.LastLoginAt == nil {
		return nil
	}
	return &DateTime{*u.base.LastLoginAt}
}

func (u *userResolver) DisableReason() *string {
	if !u.base.IsDisabled || u.base.DisableReason == "" {
		return nil
	}
	s := u.base.DisableReason
	return &s
}

func (u *userResolver) PasswordExpired() bool {
	return account.ExpiredAt(u.expireAfter, u.acct.Now())
}

func (u *userResolver) StandardAttributes(ctx context.Context) (JSON, error) {
	full, err := u.load(ctx)
	if err != nil {
		return JSON{}, err
	}
	user, _ := account.UserPayload(full)["user"].(map[string]any)
	return JSON{user["standard_attributes"]}, nil
}

func (u *userResolver) Identities(ctx context.Context, args struct {
	First *int32
	After *string
}) (*identityConnection, error) {
	full, err := u.load(ctx)
	if err != nil {
		return nil, err
	}
	start := 0
	if args.After != nil {
		b, err := base64.RawURLEncoding.DecodeString(*args.After)
		if _, serr := fmt.Sscanf(string(b), "identity:%d", &start); err != nil || serr != nil || start < 0 {
			return nil, apiError{&account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Message: "This identities cursor is not valid."}}
		}
		start++
	}
	n := len(full.Identities)
	if start > n {
		start = n
	}
	end := n
	if args.First != nil && *args.First >= 0 && start+int(*args.First) < n {
		end = start + int(*args.First)
	}
	c := &identityConnection{total: int32(n), info: &pageInfo{hasNext: end < n, hasPrev: start > 0}}
	edges := []*identityEdge{}
	for i := start; i < end; i++ {
		cur := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("identity:%d", i)))
		edges = append(edges, &identityEdge{cursor: cur, node: &identityResolver{full.Identities[i]}})
	}
	if len(edges) > 0 {
		c.info.start, c.info.end = &edges[0].cursor, &edges[len(edges)-1].cursor
	}
	c.edges = edges
	return c, nil
}

// ---- Identity ----

type identityResolver struct{ i store.Identity }

func (r *identityResolver) ID() graphql.ID      { return NodeID("Identity", r.i.ID) }
func (r *identityResolver) Type() string        { return "login_id" }
func (r *identityResolver) CreatedAt() DateTime { return DateTime{r.i.CreatedAt} }
func (r *identityResolver) UpdatedAt() DateTime { return DateTime{r.i.CreatedAt} }
func (r *identityResolver) Claims() JSON {
	return JSON{map[string]any{account.LoginIDClaim(r.i.Kind): r.i.Value, "https://authgear.com/claims/login_id/key": r.i.Kind,
		"https://authgear.com/claims/login_id/type": r.i.Kind, "https://authgear.com/claims/login_id/value": r.i.Value}}
}

type identityEdge struct {
	cursor string
	node   *identityResolver
}

func (e *identityEdge) Cursor() string          { return e.cursor }
func (e *identityEdge) Node() *identityResolver { return e.node }

type identityConnection struct {
	edges []*identityEdge
	info  *pageInfo
	total int32
}

func (c *identityConnection) Edges() *[]*identityEdge { return &c.edges }
func (c *identityConnection) PageInfo() *pageInfo     { return c.info }
func (c *identityConnection) TotalCount() *int32      { return &c.total }

// ---- Connections ----

type pageInfo struct {
	hasNext, hasPrev bool
	start, end       *string
}

func (p *pageInfo) HasNextPage() bool     { return p.hasNext }
func (p *pageInfo) HasPreviousPage() bool { return p.hasPrev }
func (p *pageInfo) StartCursor() *string  { return p.start }
func (p *pageInfo) EndCursor() *string    { return p.end }

type userEdge struct {
	cursor string
	node   *userResolver
}

func (e *userEdge) Cursor() string      { return e.cursor }
func (e *userEdge) Node() *userResolver { return e.node }

type userConnection struct {
	r      *resolver
	search string
	edges  []*userEdge
	info   *pageInfo
}

func (c *userConnection) Edges() *[]*userEdge { return &c.edges }
func (c *userConnection) PageInfo() *pageInfo { return c.info }

// TotalCount counts every user the query matches (not just this page);
// it runs only when asked for.
func (c *userConnection) TotalCount(ctx context.Context) (*int32, error) {
	n, err := c.r.acct.Store().CountUsersMatching(ctx, strings.TrimSpace(c.search))
	if err != nil {
		return nil, c.r.wrapErr(ctx, "count users", err)
	}
	v := int32(n)
	return &v, nil
}

// Users pages through users by keyset: newest first, or with
// searchKeyword, by login ID prefix. A user whose several login IDs match
// is listed once, at their first matching login ID.
func (r *resolver) Users(ctx context.Context, args struct {
	First         *int32
	After         *string
	SearchKeyword *string
}) (*userConnection, error) {
	first := defaultFirst
	if args.First != nil {
		first = int(*args.First)
		if first < 0 || first > maxFirst {
			return nil, r.wrapErr(ctx, "users", &account.Error{Name: "Invalid", Reason: account.ReasonValidationFailed, Field: "first",
				Message: fmt.Sprintf("first must be between 0 and %d.", maxFirst),
				Info:    map[string]any{"causes": []map[string]any{{"kind": "maximum", "location": "/first", "details": map[string]any{"maximum": maxFirst}}}}})
		}
	}
	search := ""
	if args.SearchKeyword != nil {
		search = strings.TrimSpace(*args.SearchKeyword)
	}
	if len(search) > 320 {
		search = search[:320]
	}
	after := ""
	if args.After != nil && *args.After != "" {
		var err error
		if after, err = decodeUsersCursor(*args.After, search); err != nil {
			return nil, r.wrapErr(ctx, "users", err)
		}
	}
	conn := &userConnection{r: r, search: search, info: &pageInfo{hasPrev: after != ""}, edges: []*userEdge{}}
	page := &pageLoader{acct: r.acct}
	// One row past the page tells whether there is a next page.
	rows, err := r.acct.ListUsers(ctx, store.ListUsersParams{Search: search, After: after, Limit: first + 1})
	if err != nil {
		return nil, r.wrapErr(ctx, "users", err)
	}
	if len(rows) > first {
		rows, conn.info.hasNext = rows[:first], true
	}
	for _, row := range rows {
		conn.edges = append(conn.edges, &userEdge{
			cursor: encodeCursor(usersCursor{Search: search, After: row.Cursor}),
			node: &userResolver{acct: r.acct, base: row.User, expireAfter: row.ExpireAfter,
				page: page, hasPassword: row.HasPassword},
		})
		page.ids = append(page.ids, row.ID)
	}
	if n := len(conn.edges); n > 0 {
		conn.info.start, conn.info.end = &conn.edges[0].cursor, &conn.edges[n-1].cursor
	}
	return conn, nil
}

// ---- Mutations ----

type userPayload struct{ u *userResolver }

func (p *userPayload) User() *userResolver { return p.u }

type deletePayload struct{ id graphql.ID }

func (p *deletePayload) DeletedUserID() graphql.ID { return p.id }

func boolOf(b *bool) bool { return b != nil && *b }

type createUserArgs struct {
	Input struct {
		Definition struct {
			LoginID struct {
				Key   string
				Value string
			}
		}
		Password           *string
		SendPassword       *bool
		SetPasswordExpired *bool
	}
}

func (r *resolver) CreateUser(ctx context.Context, args createUserArgs) (*userPayload, error) {
	in := args.Input
	u, err := r.acct.CreateUser(ctx, actorFrom(ctx), account.CreateUserInput{
		LoginIDKey: in.Definition.LoginID.Key, LoginIDValue: in.Definition.LoginID.Value,
		Password: in.Password, SendPassword: boolOf(in.SendPassword), SetPasswordExpired: boolOf(in.SetPasswordExpired),
	})
	if err != nil {
		return nil, r.wrapErr(ctx, "createUser", err)
	}
	return &userPayload{r.userOf(u)}, nil
}

type resetPasswordArgs struct {
	Input struct {
		UserID             graphql.ID
		Password           *string
		SendPassword       *bool
		SetPasswordExpired *bool
	}
}

func (r *resolver) ResetPassword(ctx context.Context, args resetPasswordArgs) (*userPayload, error) {
	id, err := userIDFrom(args.Input.UserID)
	if err != nil {
		return nil, r.wrapErr(ctx, "resetPassword", err)
	}
	u, err := r.acct.ResetPassword(ctx, actorFrom(ctx), account.ResetPasswordInput{UserID: id, Password: args.Input.Password,
		SendPassword: boolOf(args.Input.SendPassword), SetPasswordExpired: boolOf(args.Input.SetPasswordExpired)})
	if err != nil {
		return nil, r.wrapErr(ctx, "resetPassword", err)
	}
	return &userPayload{r.userOf(u)}, nil
}

type setPasswordExpiredArgs struct {
	Input struct {
		UserID  graphql.ID
		Expired bool
	}
}

func (r *resolver) SetPasswordExpired(ctx context.Context, args setPasswordExpiredArgs) (*userPayload, error) {
	id, err := userIDFrom(args.Input.UserID)
	if err != nil {
		return nil, r.wrapErr(ctx, "setPasswordExpired", err)
	}
	u, err := r.acct.SetPasswordExpired(ctx, actorFrom(ctx), id, args.Input.Expired)
	if err != nil {
		return nil, r.wrapErr(ctx, "setPasswordExpired", err)
	}
	return &userPayload{r.userOf(u)}, nil
}

type setDisabledStatusArgs struct {
	Input struct {
		UserID     graphql.ID
		IsDisabled bool
		Reason     *string
	}
}

func (r *resolver) SetDisabledStatus(ctx context.Context, args setDisabledStatusArgs) (*userPayload, error) {
	id, err := userIDFrom(args.Input.UserID)
	if err != nil {
		return nil, r.wrapErr(ctx, "setDisabledStatus", err)
	}
	reason := ""
	if args.Input.Reason != nil {
		reason = *args.Input.Reason
	}
	u, err := r.acct.SetDisabledStatus(ctx, actorFrom(ctx), id, args.Input.IsDisabled, reason)
	if err != nil {
		return nil, r.wrapErr(ctx, "setDisabledStatus", err)
	}
	return &userPayload{r.userOf(u)}, nil
}

type deleteUserArgs struct {
	Input struct{ UserID graphql.ID }
}

func (r *resolver) DeleteUser(ctx context.Context, args deleteUserArgs) (*deletePayload, error) {
	id, err := userIDFrom(args.Input.UserID)
	if err != nil {
		return nil, r.wrapErr(ctx, "deleteUser", err)
	}
	u, err := r.acct.DeleteUser(ctx, actorFrom(ctx), id)
	if err != nil {
		return nil, r.wrapErr(ctx, "deleteUser", err)
	}
	return &deletePayload{NodeID("User", u.ID)}, nil
}
