package hooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Signing secrets.
//
// A webhook's secret is 32 random bytes, shown once to the admin as
// "whsec_" + base64(key) — the Standard Webhooks format, which its
// libraries accept as is. Each signature keys HMAC-SHA256 the way its own
// receivers expect:
//
//	x-authgear-body-signature: hex(HMAC-SHA256(secret string as shown, body))
//	webhook-signature:         v1,base64(HMAC-SHA256(decoded 32 bytes, webhook-id + "." + webhook-timestamp + "." + body))
//
// so a receiver written for the reference product (which keys the HMAC
// with the secret string it was shown) works unchanged, and a Standard
// Webhooks library takes the string unchanged too. The key is stored
// AES-GCM encrypted under a key derived from the server secret, and never
// shown again.
const secretPrefix = "whsec_"

// newSecretKey makes a fresh signing key.
func newSecretKey() ([]byte, error) {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	return k, err
}

// FormatSecret shows a signing key the way the admin copies it.
func FormatSecret(key []byte) string { return secretPrefix + base64.StdEncoding.EncodeToString(key) }

// ParseSecret decodes a "whsec_..." secret to its key.
func ParseSecret(s string) ([]byte, error) {
	if !strings.HasPrefix(s, secretPrefix) {
		return nil, errors.New("hooks: secret must start with whsec_")
	}
	return base64.StdEncoding.DecodeString(s[len(secretPrefix):])
}

// BodySignature is the reference product's x-authgear-body-signature,
// keyed with the secret string the admin was shown.
func BodySignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// StandardSignature is the Standard Webhooks webhook-signature value.
func StandardSignature(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signRequest sets both signatures' headers on req.
func signRequest(req *http.Request, key []byte, id string, at time.Time, body []byte) {
	ts := at.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latchkey-Webhook/1")
	req.Header.Set("x-authgear-body-signature", BodySignature(FormatSecret(key), body))
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", StandardSignature(key, id, ts, body))
}
