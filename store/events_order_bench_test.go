package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPostgresCreateUsersConcurrent measures user creation as the
// account package writes it (user, identity, password email in the
// outbox, user.created and admin.create_user events, in one transaction)
// from 16 goroutines over two store handles (two instances) on one
// PostgreSQL database: the cost of serialising event inserts so that seq
// order is commit order. "notify" adds the outbox's NOTIFY, which wakes
// the instances' workers (PostgreSQL serialises the commits of notifying
// transactions too).
//
//	go test ./store -run '^$' -bench PostgresCreateUsersConcurrent -benchmem -benchtime 2000x
func BenchmarkPostgresCreateUsersConcurrent(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchCreateUsers(b, false) })
	b.Run("notify", func(b *testing.B) { benchCreateUsers(b, true) })
}

func benchCreateUsers(b *testing.B, notify bool) {
	url := pgURL(b)
	ctx := context.Background()
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	var n atomic.Int64
	payload := json.RawMessage(`{"user":{"id":"x"}}`)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		s := stores[n.Add(1)%2]
		for pb.Next() {
			i := n.Add(1)
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			email := fmt.Sprintf("user%d@example.com", i)
			now := time.Now()
			err := s.InTx(ctx, func(tx *Tx) error {
				if err := tx.InsertUser(ctx, &User{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
					return err
				}
				if err := tx.InsertIdentity(ctx, Identity{ID: "i" + id, UserID: id, Kind: "email", Value: email, ValueNorm: email, CreatedAt: now}); err != nil {
					return err
				}
				if err := tx.InsertOutbox(ctx, &OutboxMessage{UserID: id, Kind: "new_user", Recipient: email, Subject: "s", Secret: []byte("sealed"), NextAttemptAt: now, CreatedAt: now}); err != nil {
					return err
				}
				if notify {
					if err := tx.Notify(ctx, ChannelOutbox); err != nil {
						return err
					}
				}
				for _, typ := range []string{"user.created", "admin.create_user"} {
					if err := tx.InsertEvent(ctx, &Event{Type: typ, UserID: id, CreatedAt: now, Payload: payload, Context: payload}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPostgresSignInEventsConcurrent measures the write of a sign-in
// (last_login_at and a user.authenticated event, in one transaction) from
// 16 goroutines over two store handles on one PostgreSQL database. Unlike
// user creation, nothing else serialises these transactions, so this is
// the worst case for the event lock.
//
//	go test ./store -run '^$' -bench PostgresSignInEventsConcurrent -benchmem -benchtime 5000x
func BenchmarkPostgresSignInEventsConcurrent(b *testing.B) {
	url := pgURL(b)
	ctx := context.Background()
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	const users = 64
	now := time.Now()
	for i := range users {
		if err := stores[0].InsertUser(ctx, &User{ID: fmt.Sprintf("u%d", i), CreatedAt: now, UpdatedAt: now}); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	payload := json.RawMessage(`{"user":{"id":"x"}}`)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		s := stores[n.Add(1)%2]
		for pb.Next() {
			id := fmt.Sprintf("u%d", n.Add(1)%users)
			err := s.InTx(ctx, func(tx *Tx) error {
				if err := tx.TouchUser(ctx, id, time.Now()); err != nil {
					return err
				}
				return tx.InsertEvent(ctx, &Event{Type: "user.authenticated", UserID: id, CreatedAt: time.Now(), Payload: payload, Context: payload})
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
