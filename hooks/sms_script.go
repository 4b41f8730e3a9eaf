package hooks

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"latchkey/script"
	"latchkey/store"
)

// ErrNoSMSScript is wrapped when LATCHKEY_SMS_URL=script://… names no
// TypeScript hook (or a name two hooks share).
var ErrNoSMSScript = errors.New("hooks: no such TypeScript hook")

// SMSScript finds the TypeScript hook that the custom SMS provider runs
// (LATCHKEY_SMS_URL=script://REF): REF is the hook's ID, or its name when
// exactly one hook has that name. It is looked up at every text, so that
// saving new code in the portal takes effect at the next text, and its
// compiled form is cached per version like any hook's. The hook's enabled
// flag and events do not matter here: they say which events it gets.
//
// It returns the compiled code, the hook's name and its time limit.
func (s *Service) SMSScript(ctx context.Context, ref string) (*script.Compiled, string, time.Duration, error) {
	ref = strings.TrimSpace(ref)
	id, err := s.smsScriptID(ctx, ref)
	if err != nil {
		return nil, "", 0, err
	}
	sc, err := s.store.HookScript(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", 0, fmt.Errorf("%w: the TypeScript hook %q was deleted", ErrNoSMSScript, ref)
	}
	if err != nil {
		return nil, "", 0, err
	}
	return s.compiled.get(sc), sc.Name, sc.Timeout, nil
}

// smsScriptID is the ID of the TypeScript hook ref names: its ID, or its
// name when exactly one hook has that name.
func (s *Service) smsScriptID(ctx context.Context, ref string) (string, error) {
	names, err := s.store.HookScriptNames(ctx)
	if err != nil {
		return "", err
	}
	if _, ok := names[ref]; ok {
		return ref, nil
	}
	var ids []string
	for hid, name := range names {
		if name == ref {
			ids = append(ids, hid)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("%w: LATCHKEY_SMS_URL names the TypeScript hook %q, but no hook has that name or ID; add it in Hooks → Add → TypeScript", ErrNoSMSScript, ref)
	case 1:
		return ids[0], nil
	default:
		sort.Strings(ids)
		return "", fmt.Errorf("%w: %d TypeScript hooks are named %q; put one's ID in LATCHKEY_SMS_URL (script://%s)", ErrNoSMSScript, len(ids), ref, ids[0])
	}
}
