package main

import (
	"strings"
	"testing"
)

func TestLoadConfigSMS(t *testing.T) {
	bad := map[string]map[string]string{
		"must start with":             {"LATCHKEY_SMS_URL": "https://sms.example.com"},
		"loopback":                    {"LATCHKEY_SMS_URL": "webhook+http://sms.example.com/send", "LATCHKEY_SMS_WEBHOOK_SECRET": "s"},
		"LATCHKEY_SMS_WEBHOOK_SECRET": {"LATCHKEY_SMS_URL": "webhook+https://sms.example.com/send"},
		"exactly one of":              {"LATCHKEY_SMS_URL": "twilio://AC1:tok@api.twilio.com"},
		"LATCHKEY_SMS_DAILY_LIMIT":    {"LATCHKEY_SMS_DAILY_LIMIT": "lots"},
		"LATCHKEY_SMS_COUNTRY_LIMITS": {"LATCHKEY_SMS_COUNTRY_LIMITS": "44:50"},
	}
	for want, env := range bad {
		_, err := loadConfig(nil, func(k string) string { return env[k] })
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want one naming %q", env, err, want)
		}
	}
	c, err := loadConfig(nil, func(k string) string {
		return map[string]string{"LATCHKEY_SMS_URL": "twilio://AC1:tok@api.twilio.com?from=%2B15551230000", "LATCHKEY_SMS_DAILY_LIMIT": "50",
			"LATCHKEY_SMS_COUNTRY_LIMITS": "1=40, +44=5, *=2", "LATCHKEY_SMS_PHONE_HOURLY_LIMIT": "2"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	l := c.SMS.Limits
	if l.DailyTotal != 50 || l.PerPhoneHour != 2 || l.PerCountryDay["1"] != 40 || l.PerCountryDay["44"] != 5 || l.PerCountryDay["*"] != 2 {
		t.Fatalf("limits %+v", l)
	}
	if c, err := loadConfig(nil, func(string) string { return "" }); err != nil || c.SMS.URL != "" || c.SMS.Limits.DailyTotal != 0 {
		t.Fatalf("defaults: %+v, %v (0 means account's default of 1000)", c.SMS, err)
	}
}
