package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionText(t *testing.T) {
	for _, c := range []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{nil, "mapper (no build information)"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"mapper (devel) (revision unknown, go1.26.8)"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261129193400-0d23a10c1a2b+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0d23a10c1a2b"}, {Key: "vcs.modified", Value: "true"},
				{Key: "vcs.time", Value: "2026-11-29T19:34:00Z"}}},
			"mapper v0.0.0-20261129193400-0d23a10c1a2b+dirty (0d23a10c1a2b, modified, 2026-11-29T19:34:00Z, go1.26.8)"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}},
			"mapper v1.2.0 (abc, go1.26.8)"},
	} {
		if got := versionText(c.bi); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}
