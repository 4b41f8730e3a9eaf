package hooks

import (
	"context"
	"fmt"

	"latchkey/account"
	"latchkey/store"
)

// UpdateWebhook changes a webhook's URL and (for a non-blocking one) its
// events, validated as CreateWebhook does. Its kind, secret and delivery
// log stay; it records webhook.updated.
func (s *Service) UpdateWebhook(ctx context.Context, actor account.Actor, id string, in WebhookInput) (*store.Webhook, error) {
	var out *store.Webhook
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.WebhookByID(ctx, id)
		if err != nil {
			return err
		}
		in.Blocking = cur.Kind == store.WebhookBlocking
		w, err := webhookFromInput(in)
		if err != nil {
			return err
		}
		if err := tx.UpdateWebhook(ctx, id, w.URL, w.AllEvents, w.Events, s.Now()); err != nil {
			return err
		}
		cur.URL, cur.AllEvents, cur.Events, cur.UpdatedAt = w.URL, w.AllEvents, w.Events, s.Now()
		out = cur
		return s.Record(ctx, tx, actor, account.Event{Type: WebhookUpdated, Payload: webhookPayload(cur)})
	})
	if err != nil {
		if e, ok := account.AsError(err); ok {
			return nil, e
		}
		return nil, fmt.Errorf("hooks: update webhook: %w", err)
	}
	return out, nil
}

// RotateSecret gives a webhook a new signing secret and returns it (the
// only time it is shown). Deliveries from now on, retries included, are
// signed with it; the delivery log stays.
func (s *Service) RotateSecret(ctx context.Context, actor account.Actor, id string) (string, error) {
	key, err := newSecretKey()
	if err != nil {
		return "", err
	}
	sealed, err := s.sealer.Seal(key, []byte(id))
	if err != nil {
		return "", err
	}
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		w, err := tx.WebhookByID(ctx, id)
		if err != nil {
			return err
		}
		if err := tx.SetWebhookSecret(ctx, id, sealed, s.Now()); err != nil {
			return err
		}
		p := webhookPayload(w)
		p["secret_rotated"] = true
		return s.Record(ctx, tx, actor, account.Event{Type: WebhookUpdated, Payload: p})
	})
	if err != nil {
		return "", fmt.Errorf("hooks: rotate secret: %w", err)
	}
	return FormatSecret(key), nil
}
