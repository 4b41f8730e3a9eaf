package account

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"latchkey/store"
)

const loginIDNormSetting = "login_id_norm_version"

// renormalizeLoginIDs brings login IDs stored under older normalisation
// rules to LoginIDNormVersion, once per database (a setting records it).
// Only rows with non-ASCII characters can change. A row whose new key
// belongs to another account is left as it was and logged, so both
// accounts keep working until an admin renames one; a row that no longer
// validates (say, a mixed-script username) is kept too: refusing it is
// for new login IDs, not for accounts that exist.
func (s *Service) renormalizeLoginIDs(ctx context.Context) error {
	raw, err := s.store.Setting(ctx, loginIDNormSetting)
	if err == nil {
		if v, _ := strconv.Atoi(string(raw)); v >= LoginIDNormVersion {
			return nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("account: login ID normalisation: %w", err)
	}
	ids, err := s.store.IdentitiesWithNonASCII(ctx)
	if err != nil {
		return fmt.Errorf("account: login ID normalisation: %w", err)
	}
	changed, kept := 0, 0
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		for _, i := range ids {
			var value, key string
			switch i.Kind {
			case KindEmail:
				v, k, ok := normalizeEmail(i.Value)
				if !ok {
					kept++
					continue
				}
				value, key = v, k
			case KindUsername:
				v, err := normalizeUsername(i.Value)
				if err != nil {
					kept++
					continue
				}
				value, key = v, v
			default:
				continue
			}
			if value == i.Value && key == i.ValueNorm {
				continue
			}
			err := tx.UpdateIdentityValue(ctx, i.ID, value, key)
			if errors.Is(err, store.ErrConflict) {
				s.log.Warn("login ID left as it was: under Unicode normalisation it is the same as another account's; rename one of them",
					"identity_id", i.ID, "user_id", i.UserID)
				kept++
				continue
			}
			if err != nil {
				return err
			}
			changed++
		}
		return tx.PutSetting(ctx, loginIDNormSetting, []byte(strconv.Itoa(LoginIDNormVersion)))
	})
	if err != nil {
		return fmt.Errorf("account: login ID normalisation: %w", err)
	}
	if changed > 0 || kept > 0 {
		s.log.Info("login IDs normalised", "changed", changed, "kept", kept)
	}
	return nil
}
