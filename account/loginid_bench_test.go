package account

import "testing"

// BenchmarkParseAnyLoginID measures the normalisation every sign-in does
// (NFKC, PRECIS, IDNA, the script check), ASCII and not.
func BenchmarkParseAnyLoginID(b *testing.B) {
	for _, in := range []string{"alice@example.com", "Jos\u00e9@B\u00fccher.example", "john.doe_1", "\u5c71\u7530taro"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseAnyLoginID(in, "US"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
