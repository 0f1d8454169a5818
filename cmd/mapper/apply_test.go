package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoteLeftoversEscapesNames: the leftovers beside an output are named
// from the disk, so a name holding an ESC or a newline is printed escaped,
// in the list and in the rm command alike, and the command still names the
// directory when a shell runs it.
func TestNoteLeftoversEscapesNames(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	hostile := filepath.Join(dir, ".out.tmp-\x1b[2J\nit's")
	if err := os.Mkdir(hostile, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	noteLeftovers(out, &b)
	text := b.String()
	if i := strings.IndexFunc(text, func(r rune) bool { return r != '\n' && r < 0x20 }); i >= 0 {
		t.Fatalf("the note holds control character %q:\n%s", text[i], text)
	}
	if strings.Count(text, "\n") != 2 {
		t.Fatalf("want two lines of note, got:\n%s", text)
	}
	if want := `.out.tmp-\x1b[2J\nit's"`; !strings.Contains(text, want) {
		t.Errorf("the note does not show %s:\n%s", want, text)
	}
	cmd := shellQuote(hostile)
	if want := `$'` + dir + `/.out.tmp-\x1b[2J\nit\'s'`; cmd != want {
		t.Errorf("shellQuote = %s, want %s", cmd, want)
	}
	// bash reads $'...' back as the name.
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to read the command back")
	}
	got, err := exec.Command(bash, "-c", "printf %s "+cmd).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != hostile {
		t.Errorf("bash read %q back, want %q", got, hostile)
	}
	for _, s := range []string{"out", "my out/.x.tmp-1", "it's"} {
		if strings.HasPrefix(shellQuote(s), "$") {
			t.Errorf("shellQuote(%q) = %s: a printable name needs no $'...'", s, shellQuote(s))
		}
	}
}
