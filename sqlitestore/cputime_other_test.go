//go:build !unix

package sqlitestore_test

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
