package account

import (
	"errors"
	"strings"
)

// Error is a failure the caller can act on: bad input, a broken invariant,
// an unknown user. Name and Reason are the reference product's
// errors[].extensions.errorName and .reason; Info is its .info.
type Error struct {
	Name    string
	Reason  string
	Message string
	// Field is the form field the error belongs to, when there is one.
	Field  string
	Info   map[string]any
	Causes []Cause
	// Also holds further errors found in the same input (other fields).
	Also []*Error
}

func (e *Error) Error() string { return "account: " + e.Reason + ": " + e.Message }

// Error reasons, as the reference product names them.
const (
	ReasonInvariantViolated      = "InvariantViolated"
	ReasonValidationFailed       = "ValidationFailed"
	ReasonPasswordPolicyViolated = "PasswordPolicyViolated"
	ReasonSendPasswordNoTarget   = "SendPasswordNoTarget"
	ReasonUserNotFound           = "UserNotFound"
)

func fieldErr(field, reason, msg string, info map[string]any) *Error {
	return &Error{Name: "Invalid", Reason: reason, Message: msg, Field: field, Info: info}
}

// JoinErrors makes one error of several found in the same input: the
// first, with the rest in Also; nil for none.
func JoinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	first := *errs[0]
	first.Also = errs[1:]
	return &first
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// FieldErrors maps form fields to messages for every *Error in err; an
// error without a field goes under "".
func FieldErrors(err error) map[string]string {
	e, ok := AsError(err)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, x := range append([]*Error{e}, e.Also...) {
		msg := x.Message
		if len(x.Causes) > 0 {
			var parts []string
			for _, c := range x.Causes {
				parts = append(parts, CauseMessage(c))
			}
			msg = strings.Join(parts, " ")
		}
		if prev, ok := out[x.Field]; ok {
			msg = prev + " " + msg
		}
		out[x.Field] = msg
	}
	return out
}

func policyErr(field string, causes []Cause) *Error {
	return &Error{Name: "Invalid", Reason: ReasonPasswordPolicyViolated, Message: "Password does not meet the password policy.",
		Field: field, Causes: causes, Info: map[string]any{"causes": causes}}
}

func userNotFound() *Error {
	return &Error{Name: "NotFound", Reason: ReasonUserNotFound, Message: "User not found."}
}
