package handlers

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"latchkey/account"
	"latchkey/views"
)

func (s *Server) policyShow(c echo.Context) error {
	return render(c, http.StatusOK, views.PasswordPolicy(s.layout(c, "Password policy", "settings"), views.PolicyForm{Policy: s.acct.Policy()}))
}

func (s *Server) policyUpdate(c echo.Context) error {
	errs := map[string]string{}
	num := func(name string) int {
		v := strings.TrimSpace(c.FormValue(name))
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs[name] = "Enter a whole number."
		}
		return n
	}
	check := func(name string) bool { return c.FormValue(name) == "true" }
	// A number behind an on/off switch: off is 0, on needs 1 or more.
	// Forms without the switch (API-like posts) send the number alone.
	switched := func(name string) int {
		if c.FormValue(name+"_switch") != "1" {
			return num(name)
		}
		if !check(name + "_on") {
			return 0
		}
		n := num(name)
		if _, bad := errs[name]; !bad && n < 1 {
			errs[name] = "Enter 1 or more, or turn this off."
		}
		return n
	}
	p := account.Policy{
		MinLength:             num("min_length"),
		UppercaseRequired:     check("uppercase_required"),
		LowercaseRequired:     check("lowercase_required"),
		AlphabetRequired:      check("alphabet_required"),
		DigitRequired:         check("digit_required"),
		SymbolRequired:        check("symbol_required"),
		MinimumGuessableLevel: num("minimum_guessable_level"),
		ExcludedKeywords:      strings.Split(strings.ReplaceAll(c.FormValue("excluded_keywords"), "\r", ""), "\n"),
		HistorySize:           switched("history_size"),
		HistoryDays:           switched("history_days"),
		MaxAgeDays:            switched("max_age_days"),
		TemporaryExpiryDays:   switched("temporary_expiry_days"),
		LockoutThreshold:      switched("lockout_threshold"),
		LockoutMinutes:        num("lockout_minutes"),
	}
	if len(errs) == 0 {
		err := s.acct.SavePolicy(c.Request().Context(), s.adminActor(c), p)
		if err == nil {
			if err := addFlash(c, portalSession(c), "success", "Password policy saved."); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, "/portal/settings/password-policy")
		}
		if errs = account.FieldErrors(err); errs == nil {
			return err
		}
	}
	return render(c, http.StatusUnprocessableEntity, views.PasswordPolicy(s.layout(c, "Password policy", "settings"), views.PolicyForm{Policy: p, Errors: errs}))
}

// passwordCheck answers the live checklist: which policy rules the typed
// password breaks. It only runs the policy; nothing is stored or logged.
func (s *Server) passwordCheck(c echo.Context) error {
	return c.JSON(http.StatusOK, passwordCheckResult(s.acct.Policy(), c.FormValue("password")))
}

func passwordCheckResult(p account.Policy, pw string) map[string]any {
	failing := []string{}
	for _, cause := range p.Check(pw) {
		failing = append(failing, cause.Kind)
	}
	return map[string]any{"failing": failing}
}

// passwordGenerate fills the Create User form's password with one made by
// the server's generator, so the browser never needs its own.
func (s *Server) passwordGenerate(c echo.Context) error {
	pw, err := account.GeneratePassword(s.acct.Policy())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"password": pw})
}
