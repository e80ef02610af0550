// Command sesame runs the Sesame authentication server and administers its
// data: users, sessions and signing keys. Run "sesame serve" for the server
// on the embedded default (SQLite in ./sesame-data, no flags needed), and
// "sesame help" for the rest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		// One line: drivers' multi-line detail would bury the flag name.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		fmt.Fprintln(os.Stderr, "sesame:", strings.TrimRight(msg, ": \t"))
		var ue *usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
