// Package adminapi serves Latchkey's GraphQL Admin API: the reference
// product's schema for users, over the same account methods the portal
// calls. Authentication (Admin API keys) happens before it, in handlers.
package adminapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	graphql "github.com/graph-gophers/graphql-go"
	gqlerrors "github.com/graph-gophers/graphql-go/errors"

	"latchkey/account"
	"latchkey/store"
)

//go:embed schema.graphql
var schemaText string

// maxBody caps a request body; queries and mutations are small.
const maxBody = 1 << 20

// maxQueryLength caps the query text.
const maxQueryLength = 64 << 10

// API executes Admin API requests.
type API struct {
	acct   *account.Service
	schema *graphql.Schema
	// readOnly is the same schema without Mutation, for GET requests.
	readOnly *graphql.Schema
	log      *slog.Logger
}

// New parses the schema against the resolvers; a mismatch is a programming
// error and panics at start-up, never at request time.
func New(acct *account.Service, log *slog.Logger) *API {
	if log == nil {
		log = slog.Default()
	}
	r := &resolver{acct: acct, log: log}
	opts := []graphql.SchemaOpt{
		graphql.MaxDepth(12),
		graphql.MaxQueryLength(maxQueryLength),
		graphql.MaxParallelism(4),
		graphql.PanicHandler(panicHandler{log}),
	}
	return &API{acct: acct, log: log,
		schema:   graphql.MustParseSchema(schemaText, r, opts...),
		readOnly: graphql.MustParseSchema(queryOnly(schemaText), r, opts...),
	}
}

// queryOnly drops the Mutation type from the schema text, so that GET
// requests cannot change anything whatever the query says.
func queryOnly(schema string) string {
	schema = strings.Replace(schema, "  mutation: Mutation\n", "", 1)
	i := strings.Index(schema, "type Mutation {")
	if i < 0 {
		panic("adminapi: schema has no Mutation type")
	}
	j := strings.Index(schema[i:], "\n}")
	return schema[:i] + schema[i+j+2:]
}

type ctxKey struct{}

// WithActor returns ctx carrying the authenticated actor of an API call.
func WithActor(ctx context.Context, a account.Actor) context.Context {
	return context.WithValue(ctx, ctxKey{}, a)
}

func actorFrom(ctx context.Context) account.Actor {
	a, _ := ctx.Value(ctxKey{}).(account.Actor)
	return a
}

// request is a GraphQL request as POSTed (JSON) or sent as GET parameters.
type request struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

// ServeHTTP runs one GraphQL request. The caller has authenticated it and
// put the actor in the request context with WithActor. GET runs queries
// only, so a mutation can never ride on a link.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req request
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		req.Query, req.OperationName = q.Get("query"), q.Get("operationName")
		if v := q.Get("variables"); v != "" {
			dec := json.NewDecoder(strings.NewReader(v))
			dec.UseNumber()
			if err := dec.Decode(&req.Variables); err != nil {
				writeError(w, http.StatusBadRequest, "variables must be a JSON object")
				return
			}
		}
	case http.MethodPost:
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, "could not read the request body")
			return
		}
		if len(body) > maxBody {
			writeError(w, http.StatusRequestEntityTooLarge, "the request body is larger than 1 MiB")
			return
		}
		switch ct {
		case "application/graphql":
			req.Query = string(body)
		case "application/json", "":
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.UseNumber()
			if err := dec.Decode(&req); err != nil {
				writeError(w, http.StatusBadRequest, "the body must be a JSON object with query, operationName and variables")
				return
			}
		default:
			writeError(w, http.StatusUnsupportedMediaType, "send application/json")
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, "use GET or POST")
		return
	}
	if strings.TrimSpace(req.Query) == "" {
		writeError(w, http.StatusBadRequest, "query is missing")
		return
	}
	ctx := r.Context()
	if r.Method == http.MethodGet && isMutation(req.Query, req.OperationName) {
		writeError(w, http.StatusMethodNotAllowed, "mutations must be sent with POST")
		return
	}
	normalizeNumbers(req.Variables)
	if cost, ok := queryCost(req.Query, req.OperationName, req.Variables); ok && cost > MaxQueryCost {
		writeCostError(w, cost)
		return
	}
	schema := a.schema
	if r.Method == http.MethodGet {
		schema = a.readOnly
	}
	res := schema.Exec(ctx, req.Query, req.OperationName, req.Variables)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	for _, e := range res.Errors {
		if e.Extensions["reason"] == ReasonDatabaseBusy {
			// A busy database is a 503 the client should retry, not a
			// GraphQL error to show.
			w.Header().Set("Retry-After", strconv.Itoa(BusyRetryAfter))
			w.WriteHeader(http.StatusServiceUnavailable)
			break
		}
	}
	if err := json.NewEncoder(w).Encode(res); err != nil {
		a.log.Warn("admin api: write response", "err", err)
	}
}

// isMutation reports whether the operation to run is a mutation; the
// schema check is what counts, this only keeps GET read-only.
func isMutation(query, opName string) bool {
	s := strings.TrimSpace(stripComments(query))
	if opName == "" {
		return strings.HasPrefix(s, "mutation")
	}
	// Look for "mutation <opName>" anywhere.
	for _, f := range strings.Split(s, "mutation")[1:] {
		f = strings.TrimSpace(f)
		if strings.HasPrefix(f, opName) {
			return true
		}
	}
	return false
}

func stripComments(q string) string {
	var b strings.Builder
	for _, line := range strings.Split(q, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// normalizeNumbers turns json.Number variables into int32 or float64,
// the types graphql-go expects for Int and Float.
func normalizeNumbers(m map[string]any) {
	for k, v := range m {
		m[k] = normalizeValue(v)
	}
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil && i >= -1<<31 && i < 1<<31 {
			return int32(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		normalizeNumbers(x)
	case []any:
		for i := range x {
			x[i] = normalizeValue(x[i])
		}
	}
	return v
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"message": msg}}})
}

// writeCostError refuses a query over the cost budget, before it runs.
func writeCostError(w http.ResponseWriter, cost int64) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message":    costError{cost}.Error(),
		"extensions": map[string]any{"errorName": "Invalid", "reason": "QueryTooCostly", "info": map[string]any{"cost": cost, "limit": MaxQueryCost}},
	}}})
}

type panicHandler struct{ log *slog.Logger }

// MakePanicError logs a resolver panic and answers with a generic error.
func (p panicHandler) MakePanicError(ctx context.Context, value any) *gqlerrors.QueryError {
	p.log.Error("admin api: panic in resolver", "panic", value)
	return &gqlerrors.QueryError{Message: "Something went wrong on our side. Please try again."}
}

// ReasonDatabaseBusy is the reason of a ServiceUnavailable error: a write
// could not get the database within its budget. The answer is HTTP 503
// with Retry-After: BusyRetryAfter seconds.
const (
	ReasonDatabaseBusy = "DatabaseBusy"
	BusyRetryAfter     = 5
)

// apiError is an account error as the reference product reports it:
// extensions {errorName, reason, info}.
type apiError struct{ e *account.Error }

func (e apiError) Error() string { return e.e.Message }

func (e apiError) Extensions() map[string]any {
	ext := map[string]any{"errorName": e.e.Name, "reason": e.e.Reason}
	info := map[string]any{}
	for k, v := range e.e.Info {
		info[k] = v
	}
	ext["info"] = info
	if len(e.e.Also) > 0 {
		var also []map[string]any
		for _, x := range e.e.Also {
			also = append(also, apiError{x}.Extensions())
		}
		ext["also"] = also
	}
	return ext
}

// wrapErr turns an account error into an apiError and hides anything else
// behind a generic message (the cause goes to the log).
func (r *resolver) wrapErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := account.AsError(err); ok {
		if e.Message == "" {
			e.Message = e.Reason
		}
		return apiError{e}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if store.IsBusy(err) {
		r.log.Warn("admin api: "+op+": database busy", "err", err)
		return apiError{&account.Error{Name: "ServiceUnavailable", Reason: ReasonDatabaseBusy,
			Message: "Latchkey is busy right now. Try again in a few seconds.", Info: map[string]any{"retry_after": BusyRetryAfter}}}
	}
	r.log.Error("admin api: "+op, "err", err)
	return apiError{&account.Error{Name: "InternalError", Reason: "UnexpectedError", Message: "Something went wrong on our side. Please try again."}}
}
