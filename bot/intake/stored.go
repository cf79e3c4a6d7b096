package intake

import (
	"context"

	"github.com/compatbot/compatbot/workflow/state"
)

// Stored reports whether a delivery id is in db's intake, in any state
// (missed-delivery recovery asks before it requests a redelivery). It
// looks the id up through the same dedup key the intake inserts with, so
// it costs one index probe.
func Stored(ctx context.Context, db *state.DB, id string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM intake_deliveries WHERE dkey = ?`, dedupKey(id)).Scan(&n)
	return n > 0, err
}
