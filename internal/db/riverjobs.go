package db

import (
	"context"
	"fmt"
)

// RiverJobCountByState counts River's jobs (deliveries, notifications) per state, for the
// queue-depth metric: one grouped count, the same SQL on both dialects. States without jobs
// are absent from the map. River's tables must exist (RiverDriver migrates them).
func RiverJobCountByState(ctx context.Context, s Store) (map[string]int64, error) {
	rows, err := s.SQLDB().QueryContext(ctx, `SELECT state, count(*) FROM river_job GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("db: counting River jobs: %w", err)
	}
	defer rows.Close()
	counts := map[string]int64{}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("db: counting River jobs: %w", err)
		}
		counts[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: counting River jobs: %w", err)
	}
	return counts, nil
}
