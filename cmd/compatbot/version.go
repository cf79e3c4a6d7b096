package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/compatbot/compatbot/internal/buildinfo"
)

func init() {
	register(command{Name: "version", Summary: "print the module version and VCS revision of this binary", Run: versionCmd})
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("version", flag.ContinueOnError)
	fl.SetOutput(stderr)
	asJSON := fl.Bool("json", false, "print as JSON (module, version, revision, time, modified, go)")
	if err := fl.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "compatbot version: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	in := buildinfo.Get()
	if *asJSON {
		b, _ := json.MarshalIndent(in, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	fmt.Fprint(stdout, in.String())
	return 0
}
