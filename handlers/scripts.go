package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/hooks"
	"latchkey/script"
	"latchkey/store"
	"latchkey/views"
)

// scriptRoutes adds the TypeScript hook pages under /portal/hooks. A
// TypeScript hook is a webhook row, so Enable/Disable, Delete and
// Redeliver are the webhooks' own routes.
func (s *Server) scriptRoutes(a *echo.Group) {
	if s.hooks == nil {
		return
	}
	a.GET("/hooks/new/typescript", s.scriptNew)
	a.POST("/hooks/typescript", s.scriptCreate)
	a.POST("/hooks/:id/script", s.scriptUpdate)
	a.POST("/hooks/:id/try", s.scriptTry)
}

// scriptForm is the TypeScript hook form as posted.
type scriptForm struct {
	Name      string   `form:"name"`
	Code      string   `form:"code"`
	Kind      string   `form:"kind"`
	EventMode string   `form:"events_mode"`
	Events    []string `form:"events"`
	Enabled   string   `form:"enabled"`
	Timeout   string   `form:"timeout"`
}

func (f scriptForm) input() (hooks.ScriptInput, string) {
	in := hooks.ScriptInput{Name: f.Name, Source: strings.ReplaceAll(f.Code, "\r\n", "\n"), Blocking: f.Kind == "blocking",
		AllEvents: f.EventMode != "chosen", Events: f.Events, Enabled: f.Enabled == "true"}
	if t := strings.TrimSpace(f.Timeout); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n <= 0 {
			return in, "Enter the timeout in whole seconds."
		}
		in.Timeout = time.Duration(n) * time.Second
	}
	return in, ""
}

func (f scriptForm) view(errs map[string]string) views.ScriptForm {
	return views.ScriptForm{Name: f.Name, Code: f.Code, Blocking: f.Kind == "blocking", AllEvents: f.EventMode != "chosen",
		Events: f.Events, Enabled: f.Enabled == "true", TimeoutSec: f.Timeout, Errors: errs}
}

func (s *Server) scriptNew(c echo.Context) error {
	f := views.ScriptForm{Code: script.Example(), AllEvents: false, Events: []string{hooks.UserCreated}, Enabled: true, TimeoutSec: "10"}
	return render(c, http.StatusOK, views.ScriptNew(s.layout(c, "Add TypeScript hook", "hooks"), views.ScriptNewPage{Form: f, Types: webhookTypes()}))
}

// bindScript reads the form; the code can be up to 100 KiB (the body
// limit is 2 MB, so a larger module still arrives and gets a clear error).
func bindScript(c echo.Context) (scriptForm, error) {
	var f scriptForm
	if err := c.Bind(&f); err != nil {
		return f, echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	return f, nil
}

// scriptErrors turns a failed save into field errors, or returns the
// error when it is not a validation failure.
func scriptErrors(err error, timeoutMsg string) (map[string]string, error) {
	fe := account.FieldErrors(err)
	if fe == nil && err != nil {
		return nil, err
	}
	if fe == nil {
		fe = map[string]string{}
	}
	if timeoutMsg != "" {
		fe["timeout"] = timeoutMsg
	}
	return fe, nil
}

func (s *Server) scriptCreate(c echo.Context) error {
	f, err := bindScript(c)
	if err != nil {
		return err
	}
	in, timeoutMsg := f.input()
	var w *store.Webhook
	if timeoutMsg == "" {
		w, err = s.hooks.CreateScript(c.Request().Context(), s.adminActor(c), in)
		if err == nil {
			if err := addFlash(c, portalSession(c), "success", "TypeScript hook added."); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, "/portal/hooks/"+w.ID)
		}
	}
	fe, err := scriptErrors(err, timeoutMsg)
	if err != nil {
		return err
	}
	return render(c, http.StatusUnprocessableEntity, views.ScriptNew(s.layout(c, "Add TypeScript hook", "hooks"),
		views.ScriptNewPage{Form: f.view(fe), Types: webhookTypes()}))
}

// scriptPage builds a TypeScript hook's page around form (the saved
// hook's values, or what was just typed) and its delivery log.
func (s *Server) scriptPage(c echo.Context, w *store.Webhook, form views.ScriptForm) (views.ScriptPage, error) {
	ctx := c.Request().Context()
	row := webhookRow(w)
	row.Name = form.Name
	p := views.ScriptPage{Hook: row, Form: form, Types: webhookTypes()}
	var before int64
	if b := c.QueryParam("before"); b != "" {
		before, _ = strconv.ParseInt(b, 10, 64)
	}
	ds, err := s.hooks.Deliveries(ctx, w.ID, before, deliveriesPageSize+1)
	if err != nil {
		return p, err
	}
	if len(ds) > deliveriesPageSize {
		ds = ds[:deliveriesPageSize]
		p.NextURL = "/portal/hooks/" + w.ID + "?" + url.Values{"before": {strconv.FormatInt(ds[len(ds)-1].ID, 10)}}.Encode()
	}
	if before > 0 {
		p.FirstURL = "/portal/hooks/" + w.ID
	}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	outputs, err := s.hooks.DeliveryOutputs(ctx, ids)
	if err != nil {
		return p, err
	}
	for _, d := range ds {
		p.Deliveries = append(p.Deliveries, views.DeliveryRow{ID: d.ID, EventID: hooks.EventID(d.EventSeq), EventType: d.EventType,
			Status: d.Status, Latency: d.LastLatency, Attempts: d.Attempts, NextAttempt: d.NextAttemptAt,
			LastError: d.LastError, CreatedAt: d.CreatedAt, Output: outputs[d.ID]})
	}
	return p, nil
}

func savedScriptForm(w *store.Webhook, sc *store.HookScript) views.ScriptForm {
	return views.ScriptForm{Name: sc.Name, Code: sc.Source, Blocking: w.Kind == store.WebhookBlocking, AllEvents: w.AllEvents,
		Events: w.Events, Enabled: w.Enabled, TimeoutSec: strconv.Itoa(int(sc.Timeout / time.Second))}
}

// loadScript finds the hook of the request and its code; a webhook
// without code is not found here.
func (s *Server) loadScript(c echo.Context) (*store.Webhook, *store.HookScript, error) {
	w, err := s.loadHook(c)
	if err != nil {
		return nil, nil, err
	}
	sc, err := s.hooks.HookScript(c.Request().Context(), w.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, echo.NewHTTPError(http.StatusNotFound, "This webhook has no code: it is not a TypeScript hook.")
	}
	return w, sc, err
}

// scriptShow is hookShow for a TypeScript hook.
func (s *Server) scriptShow(c echo.Context, w *store.Webhook, sc *store.HookScript) error {
	p, err := s.scriptPage(c, w, savedScriptForm(w, sc))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ScriptShow(s.layout(c, "TypeScript hook", "hooks"), p))
}

func (s *Server) scriptUpdate(c echo.Context) error {
	w, _, err := s.loadScript(c)
	if err != nil {
		return err
	}
	f, err := bindScript(c)
	if err != nil {
		return err
	}
	if w.Kind == store.WebhookBlocking {
		f.Kind = "blocking"
	}
	in, timeoutMsg := f.input()
	if timeoutMsg == "" {
		err = s.hooks.UpdateScript(c.Request().Context(), s.adminActor(c), w.ID, in)
		if err == nil {
			return s.hookBack(c, w.ID, "success", "TypeScript hook saved.")
		}
	}
	fe, err := scriptErrors(err, timeoutMsg)
	if err != nil {
		return err
	}
	p, err := s.scriptPage(c, w, f.view(fe))
	if err != nil {
		return err
	}
	return render(c, http.StatusUnprocessableEntity, views.ScriptShow(s.layout(c, "TypeScript hook", "hooks"), p))
}

// scriptTry runs the saved hook against a sample event and shows what
// happened. It changes nothing, so it answers the POST with the page.
func (s *Server) scriptTry(c echo.Context) error {
	w, sc, err := s.loadScript(c)
	if err != nil {
		return err
	}
	tr, err := s.hooks.TryScript(c.Request().Context(), s.adminActor(c), w.ID)
	if err != nil {
		return err
	}
	p, err := s.scriptPage(c, w, savedScriptForm(w, sc))
	if err != nil {
		return err
	}
	p.Try = &views.ScriptTry{Event: indentJSON(tr.Event), Result: indentJSON(tr.Value), Console: tr.Console,
		Duration: tr.Duration.Round(100 * time.Microsecond).String(), Error: tr.Error, SMS: tr.SMS}
	if len(tr.Value) == 0 {
		p.Try.Result = "undefined"
	}
	return render(c, http.StatusOK, views.ScriptShow(s.layout(c, "TypeScript hook", "hooks"), p))
}

func indentJSON(b json.RawMessage) string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return string(b)
	}
	return buf.String()
}
