package script

import "encoding/json"

// The engine and its worker processes talk in JSON lines over the
// worker's stdin and stdout. One worker runs one hook at a time; while it
// runs, the worker may ask the engine to fetch (the engine owns the HTTP
// client and its address policy) and ends with a done message.

// message is every message, both ways; T says which.
type message struct {
	T string `json:"t"`

	// run (engine -> worker)
	Key       string          `json:"key,omitempty"`
	Code      string          `json:"code,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	TimeoutMS int64           `json:"timeout_ms,omitempty"`
	Check     bool            `json:"check,omitempty"`

	// fetch (worker -> engine) and fetch_res (engine -> worker)
	FID        int64             `json:"fid,omitempty"`
	Method     string            `json:"method,omitempty"`
	URL        string            `json:"url,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       []byte            `json:"body,omitempty"`
	Status     int               `json:"status,omitempty"`
	StatusText string            `json:"status_text,omitempty"`

	// done (worker -> engine)
	Value   json.RawMessage `json:"value,omitempty"`
	Console []string        `json:"console,omitempty"`
	ErrKind string          `json:"err_kind,omitempty"`
	Err     string          `json:"err,omitempty"`
}

// Error kinds a run can end with.
const (
	ErrThrown  = "thrown"  // the hook threw or its promise rejected
	ErrTimeout = "timeout" // the hook ran past its time limit
	ErrMemory  = "memory"  // the hook used more memory than allowed
	ErrOutput  = "output"  // the hook's result was too large or not JSON
	ErrInvalid = "invalid" // the module has no default function
	ErrCrashed = "crashed" // the worker died

	// errUncached asks the engine to send the code again: the worker no
	// longer has the program.
	errUncached = "uncached"
)

const (
	msgRun      = "run"
	msgFetch    = "fetch"
	msgFetchRes = "fetch_res"
	msgDone     = "done"
)
