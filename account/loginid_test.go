package account

import "testing"

func TestNormalizeLoginID(t *testing.T) {
	ok := []struct{ kind, in, value, norm string }{
		{KindEmail, "  Alice@Example.COM ", "Alice@example.com", "alice@example.com"},
		{KindPhone, "(415) 555-0100", "+14155550100", "+14155550100"},
		{KindPhone, "+44 20 7946 0958", "+442079460958", "+442079460958"},
		{KindUsername, "John.Doe_1", "john.doe_1", "john.doe_1"},
	}
	for _, c := range ok {
		id, err := NormalizeLoginID(c.kind, c.in, "US")
		if err != nil {
			t.Errorf("%s %q: %v", c.kind, c.in, err)
			continue
		}
		if id.Value != c.value || id.Norm != c.norm {
			t.Errorf("%s %q = %+v, want value %q norm %q", c.kind, c.in, id, c.value, c.norm)
		}
	}
	bad := []struct{ kind, in string }{
		{KindEmail, ""}, {KindEmail, "not-an-email"}, {KindEmail, "a@b"}, {KindEmail, "Name <a@b.com>"}, {KindEmail, "a@@b.com"},
		{KindPhone, "12"}, {KindPhone, "+999 123"}, {KindPhone, "phone"},
		{KindUsername, "ab"}, {KindUsername, "has space"}, {KindUsername, "a@b"}, {KindUsername, "x123456789012345678901234567890123456789y"},
		{"fax", "123"},
	}
	for _, c := range bad {
		if _, err := NormalizeLoginID(c.kind, c.in, "US"); err == nil {
			t.Errorf("%s %q: want an error", c.kind, c.in)
		} else if e, ok := AsError(err); !ok || e.Reason != ReasonValidationFailed {
			t.Errorf("%s %q: error %v is not ValidationFailed", c.kind, c.in, err)
		}
	}
}

func TestParseAnyLoginID(t *testing.T) {
	cases := map[string]string{"Bob@Example.com": KindEmail, "+14155550100": KindPhone, "415 555 0100": KindPhone, "bob": KindUsername}
	for in, kind := range cases {
		id, err := ParseAnyLoginID(in, "US")
		if err != nil || id.Kind != kind {
			t.Errorf("%q = %+v, %v; want kind %s", in, id, err, kind)
		}
	}
}
