package mail

import (
	"context"
	"time"

	"latchkey/account"
	"latchkey/store"
)

// KindAdminInvite is the outbox kind of an admin invitation; its row has
// no user (admins are not users).
const KindAdminInvite = "admin_invite"

// QueueAdminInvite implements account.AdminInviteMailer: the invitation
// link is sealed in the row, written with tx.
func (o *Outbox) QueueAdminInvite(ctx context.Context, tx *store.Tx, m account.AdminInviteMail) error {
	return o.queue(ctx, tx, KindAdminInvite, "", m.To, sealed{Link: m.Link, LoginID: m.InvitedBy, LinkTTL: int64(m.TTL / time.Second)})
}
