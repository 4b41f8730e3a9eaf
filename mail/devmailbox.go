package mail

import (
	"context"
	netmail "net/mail"
	"sync"
	"time"
)

// DevMessage is a message delivered to the dev mailbox.
type DevMessage struct {
	ID      int64
	From    string
	To      string
	Subject string
	Text    string
	HTML    string
	At      time.Time
}

// DevMailbox is the Sender used when no SMTP server is configured: it
// keeps the last messages in memory so an admin can read them in the
// portal. Memory only, on purpose: the messages hold plaintext passwords,
// which must never reach the database; a restart empties the mailbox.
type DevMailbox struct {
	mu   sync.Mutex
	max  int
	seq  int64
	msgs []DevMessage // oldest first
	// Now is the clock.
	Now func() time.Time
}

// NewDevMailbox keeps up to max messages (default 500).
func NewDevMailbox(max int) *DevMailbox {
	if max <= 0 {
		max = 500
	}
	return &DevMailbox{max: max, Now: func() time.Time { return time.Now().UTC() }}
}

// Send implements Sender.
func (d *DevMailbox) Send(_ context.Context, from string, m Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	d.msgs = append(d.msgs, DevMessage{ID: d.seq, From: from, To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML, At: d.Now()})
	if len(d.msgs) > d.max {
		d.msgs = append([]DevMessage(nil), d.msgs[len(d.msgs)-d.max:]...)
	}
	return nil
}

// List returns the messages, newest first.
func (d *DevMailbox) List() []DevMessage {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]DevMessage, len(d.msgs))
	for i, m := range d.msgs {
		out[len(d.msgs)-1-i] = m
	}
	return out
}

// Get returns one message.
func (d *DevMailbox) Get(id int64) (DevMessage, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.msgs {
		if m.ID == id {
			return m, true
		}
	}
	return DevMessage{}, false
}

func parseAddress(s string) (string, error) {
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}
