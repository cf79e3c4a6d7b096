// Command compatbot runs the change workflow of a Gentoo Prefix compatibility
// layer: lint, diff, build and test package sets on pull requests, and publish
// what passed to test and then production. Each subcommand lives in its own
// file and registers itself here, so this file stays wiring only.
package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// command is one subcommand. Run gets the arguments after the subcommand's
// name and returns the process exit code: 0 success, 1 findings/failure,
// 2 usage or input errors.
type command struct {
	Name    string
	Summary string
	Run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.Name]; dup {
		panic("compatbot: subcommand registered twice: " + c.Name)
	}
	commands[c.Name] = c
}

// commandNames lists the registered subcommands in name order.
func commandNames() []string {
	return slices.Sorted(maps.Keys(commands))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "compatbot: the change workflow of a Gentoo Prefix compatibility layer")
	fmt.Fprintln(w, "\nUsage: compatbot <command> [flags]\n\nCommands:")
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].Summary)
	}
	fmt.Fprintln(w, "\nRun 'compatbot <command> --help' for a command's flags.")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "compatbot: unknown command %q\n\n", args[0])
		if s := closest(args[0]); s != "" {
			fmt.Fprintf(stderr, "Did you mean %q?\n\n", s)
		}
		usage(stderr)
		return 2
	}
	return c.Run(args[1:], stdout, stderr)
}

// closest suggests a registered command sharing the first two letters of a
// mistyped one; the first in name order, so the suggestion is stable.
func closest(name string) string {
	if len(name) < 2 {
		return ""
	}
	for _, n := range commandNames() {
		if strings.HasPrefix(n, name[:2]) {
			return n
		}
	}
	return ""
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
