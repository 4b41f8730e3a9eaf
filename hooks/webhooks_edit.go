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
	// The URL check may resolve a host name: done before the write
	// transaction, so a slow DNS answer holds no writer. The kind comes
	// from the row, read again in the transaction.
	cur, err := s.store.WebhookByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("hooks: update webhook: %w", err)
	}
	in.Blocking = cur.Kind == store.WebhookBlocking
	w, err := s.webhookFromInput(ctx, in)
	if err != nil {
		if e, ok := account.AsError(err); ok {
			return nil, e
		}
		return nil, fmt.Errorf("hooks: update webhook: %w", err)
	}
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.WebhookByID(ctx, id)
		if err != nil {
			return err
		}
		if (cur.Kind == store.WebhookBlocking) != in.Blocking {
			return fmt.Errorf("webhook %s changed kind during the update", id)
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
