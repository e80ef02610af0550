package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sesameauth/sesame"
	"github.com/sesameauth/sesame/token"
)

// cacheHits is the cache-hits command: what share of token-load's pool
// requests a verified-token cache of serve's size answers. It replays each
// pool, in order, through a real token.Verifier in this process and counts
// the misses without timing anything: a verification reads the verifier's
// clock once more on a miss (the parser checks exp, nbf and iat) than on a
// hit, and the two counts are calibrated first.
func cacheHits(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cache-hits", flag.ContinueOnError)
	fs.SetOutput(stderr)
	poolList := fs.String("pools", "16384,20000,32768,65536", "pool sizes, comma-separated")
	cacheSize := fs.Int("cache", verifiedTokenCache, "the verifier's cache size (token.WithCache)")
	cycles := fs.Int("cycles", 2, "passes over each pool that are counted, after one that is not")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cacheSize < 1 || *cycles < 1 {
		return errors.New("cache-hits: -cache and -cycles must be positive")
	}
	const iss = "http://sesame-lab.invalid"
	master := make([]byte, 32)
	now := time.Now()
	priv, k, err := token.GenerateKey(token.EdDSA, now)
	if err != nil {
		return err
	}
	if k, err = token.SealKey(master, k, priv); err != nil {
		return err
	}
	ks, err := token.NewKeySet([]sesame.SigningKey{k}, master, token.EdDSA, now, time.Hour)
	if err != nil {
		return err
	}
	keys := token.NewKeys(ks)
	issuer := &token.Issuer{Keys: keys, Issuer: iss, Audience: []string{iss}, TTL: time.Hour}

	fmt.Fprintf(stdout, "### cache-hits: pools cycled in order through token.WithCache(%d)\n\n| pool | hit rate |\n|---|---|\n", *cacheSize)
	for f := range strings.SplitSeq(*poolList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("cache-hits: -pools: %q is not a size", f)
		}
		var clock atomic.Int64
		v, err := token.NewVerifier(keys, iss, iss, token.WithCache(*cacheSize),
			token.WithNow(func() time.Time { clock.Add(1); return time.Now() }))
		if err != nil {
			return err
		}
		pool := make([]string, n)
		for i := range pool {
			if pool[i], err = issuer.Issue(sesame.Claims{Subject: "lab", SessionID: "s" + strconv.Itoa(i)}); err != nil {
				return err
			}
		}
		verify := func(tok string) (reads int64, err error) {
			before := clock.Load()
			_, err = v.Verify(ctx, tok)
			return clock.Load() - before, err
		}
		perMiss, err := verify(pool[0])
		if err != nil {
			return err
		}
		perHit, err := verify(pool[0])
		if err != nil {
			return err
		}
		if perMiss <= perHit {
			return fmt.Errorf("cache-hits: a miss reads the clock %d times and a hit %d: cannot tell them apart", perMiss, perHit)
		}
		var reads, total int64
		for c := range 1 + *cycles {
			for _, tok := range pool {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r, err := verify(tok)
				if err != nil {
					return err
				}
				if c > 0 {
					reads, total = reads+r, total+1
				}
			}
		}
		misses := (reads - total*perHit) / (perMiss - perHit)
		fmt.Fprintf(stdout, "| %d | %.1f%% |\n", n, 100*float64(total-misses)/float64(total))
	}
	fmt.Fprintln(stdout)
	return nil
}
