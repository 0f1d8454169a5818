package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", stderr)
	if code, ok := parseFlags(fs, args, 0); !ok {
		return code
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionText(bi))
	return 0
}

// versionText is "mapper VERSION (REVISION[, modified], TIME, GO)": the module
// version the go command stamped (a tag, a pseudo-version, or "(devel)") and
// the VCS revision; `go run` stamps no revision, a binary from `go build` or
// `go install` in a checkout does.
func versionText(bi *debug.BuildInfo) string {
	if bi == nil {
		return "mapper (no build information)"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	rev := settings["vcs.revision"]
	if rev == "" {
		rev = "revision unknown"
	}
	if settings["vcs.modified"] == "true" {
		rev += ", modified"
	}
	if t := settings["vcs.time"]; t != "" {
		rev += ", " + t
	}
	return fmt.Sprintf("mapper %s (%s, %s)", version, rev, bi.GoVersion)
}
