package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"
)

// terminal returns the file descriptor of f when f is a terminal: the one
// seam between the commands and the terminal they may run on.
func terminal(f any) (int, bool) {
	file, ok := f.(*os.File)
	if !ok || file == nil {
		return 0, false
	}
	fd := int(file.Fd())
	return fd, term.IsTerminal(fd)
}

// readPassword reads a password for a command run with --password-stdin.
// On a terminal it prompts on stderr and reads without echo, twice when
// confirm is set; otherwise it reads the first line of stdin (at most 64
// KiB), without its line ending.
func readPassword(stdin io.Reader, stderr io.Writer, confirm bool) (string, error) {
	if fd, ok := terminal(stdin); ok {
		ask := func(prompt string) (string, error) {
			fmt.Fprint(stderr, prompt)
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(stderr)
			return string(b), err
		}
		pw, err := ask("Password: ")
		if err != nil {
			return "", fmt.Errorf("reading the password from the terminal: %w", err)
		}
		if confirm {
			again, err := ask("Password again: ")
			if err != nil {
				return "", fmt.Errorf("reading the password from the terminal: %w", err)
			}
			if again != pw {
				return "", errors.New("the two passwords differ")
			}
		}
		return pw, nil
	}
	pw, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	return strings.TrimRight(pw, "\r\n"), nil
}

// list prints the items of a list command: one a line. As text, the
// columns are aligned and a header comes first only when the output is a
// terminal (so scripts read data lines alone); with --json, each item is
// one JSON object on its own line.
type list struct {
	json bool
	enc  *json.Encoder
	tw   *tabwriter.Writer
}

func newList(stdout io.Writer, asJSON bool, header ...string) *list {
	if asJSON {
		return &list{json: true, enc: json.NewEncoder(stdout)}
	}
	l := &list{tw: tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)}
	if _, ok := terminal(stdout); ok {
		fmt.Fprintln(l.tw, strings.Join(header, "\t"))
	}
	return l
}

// add prints one item: obj as JSON, or the cells as a line of text.
func (l *list) add(obj any, cells ...string) error {
	if l.json {
		return l.enc.Encode(obj)
	}
	for i, c := range cells {
		cells[i] = printable(c)
	}
	_, err := fmt.Fprintln(l.tw, strings.Join(cells, "\t"))
	return err
}

func (l *list) flush() error {
	if l.json {
		return nil
	}
	return l.tw.Flush()
}

// printable makes s safe to print in a column: an empty value is "-",
// anything else goes through termSafe, so nothing a user sent can move the
// cursor, recolour the terminal or break the columns.
func printable(s string) string {
	if s == "" {
		return "-"
	}
	return termSafe(s)
}
