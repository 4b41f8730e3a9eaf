package views

import (
	"fmt"
	"strings"
)

// The plain-text alternatives are built here, not in templ: templ escapes
// for HTML, and a password with "&" or "<" must reach a text client as typed.

// NewUserEmailText is the plain-text part of NewUserEmailHTML.
func NewUserEmailText(d PasswordEmail) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Get Started With %s\n\n", d.AppName)
	fmt.Fprintf(&b, "An account has been created for you on %s.\n\n", d.AppName)
	fmt.Fprintf(&b, "Your login ID: %s\n", d.LoginID)
	fmt.Fprintf(&b, "Your temporary password: %s\n\n", d.Password)
	fmt.Fprintf(&b, "Login to %s with your email and temporary password. Please change your password after login.\n", d.AppName)
	if d.MustChange {
		b.WriteString("You must change this password when you first sign in.\n")
	}
	if d.ExpiresAt != "" {
		fmt.Fprintf(&b, "This temporary password stops working on %s. After that, use \"Forgot password\" on the sign-in page.\n", d.ExpiresAt)
	}
	fmt.Fprintf(&b, "\nSign in: %s\n", d.SignInURL)
	return b.String()
}

// PasswordResetEmailText is the plain-text part of PasswordResetEmailHTML.
func PasswordResetEmailText(d PasswordEmail) string {
	var b strings.Builder
	b.WriteString("Your password has been changed\n\n")
	fmt.Fprintf(&b, "An administrator has changed the password of your %s account %s.\n\n", d.AppName, d.LoginID)
	fmt.Fprintf(&b, "Your new password: %s\n\n", d.Password)
	fmt.Fprintf(&b, "Login to %s with your email and this password, then change it to one only you know.\n", d.AppName)
	if d.MustChange {
		b.WriteString("You must change this password when you next sign in.\n")
	}
	if d.ExpiresAt != "" {
		fmt.Fprintf(&b, "This temporary password stops working on %s. After that, use \"Forgot password\" on the sign-in page.\n", d.ExpiresAt)
	}
	fmt.Fprintf(&b, "\nSign in: %s\n\n", d.SignInURL)
	b.WriteString("Security tips\n")
	b.WriteString("- Never share your password, and do not reply to this email with it.\n")
	b.WriteString("- Use a password you do not use on any other site.\n")
	b.WriteString("- If you did not expect this change, contact your administrator.\n")
	return b.String()
}

// ForgotPasswordEmailText is the plain-text part of ForgotPasswordEmailHTML.
func ForgotPasswordEmailText(d ForgotPasswordEmail) string {
	var b strings.Builder
	b.WriteString("Reset your password\n\n")
	fmt.Fprintf(&b, "We received a request to reset the password of your %s account.\n\n", d.AppName)
	fmt.Fprintf(&b, "Your verification code: %s\n", d.Code)
	fmt.Fprintf(&b, "The code expires in %s.\n", minutes(d.CodeMinutes))
	if d.Link != "" {
		fmt.Fprintf(&b, "\nOr open this link to choose a new password (it expires in %s):\n%s\n", minutes(d.LinkMinutes), d.Link)
	}
	b.WriteString("\nIf you did not ask to reset your password, ignore this email: your password stays the same.\n")
	return b.String()
}

func minutes(n int) string {
	if n == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}
