package app

import (
	"context"
)

// ResealAll re-encrypts every stored credential whose tokens were sealed
// with a key other than the keyset's primary, after a key rotation. Tokens
// also move to the primary key by themselves at their next refresh; this
// finishes the job for users who have been away. It reports how many
// credentials it read and how many it rewrote.
func (d *Deps) ResealAll(ctx context.Context) (scanned, resealed int, err error) {
	after := ""
	for {
		page, err := d.Store.ListCredentials(ctx, "", after, 100)
		if err != nil {
			return scanned, resealed, err
		}
		for _, c := range page {
			scanned++
			wrote, err := d.Flow.Reseal(ctx, c.UserID)
			if err != nil {
				return scanned, resealed, err
			}
			if wrote {
				resealed++
			}
		}
		if len(page) < 100 {
			return scanned, resealed, nil
		}
		after = page[len(page)-1].UserID
	}
}
