package main

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"
)

// defaultRedis is the Redis database the lab may empty: db 12 of the local
// server, which nothing else on the project's machines uses.
const defaultRedis = "redis://127.0.0.1:6379/12"

// flushRedis empties the one database url names (FLUSHDB, not FLUSHALL).
func flushRedis(ctx context.Context, url string) error {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("redis %s: %w", url, err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return fmt.Errorf("redis %s: %w", url, err)
	}
	defer c.Close()
	if err := c.Do(ctx, c.B().Flushdb().Build()).Error(); err != nil {
		return fmt.Errorf("redis %s: FLUSHDB: %w", url, err)
	}
	return nil
}
