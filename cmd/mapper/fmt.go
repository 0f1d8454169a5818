package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/mapper-dev/mapper/dsl"
	"github.com/mapper-dev/mapper/dsl/diag"
)

// runFmt implements `mapper fmt [-l] [-w] [FILES|DIRS]`: it prints the
// canonical form of .map files (directories are walked for *.map; with no
// arguments, the mappings/ directory when there is one). -l lists the files
// whose formatting differs instead, -w rewrites them in place (atomically).
// Exit status: 1 when a file does not parse or cannot be read or written,
// 2 on a usage error, 0 otherwise (differences alone do not fail: use -l).
func runFmt(args []string, stdout, stderr io.Writer) int {
	fl := pflag.NewFlagSet("fmt", pflag.ContinueOnError)
	fl.SetOutput(stderr)
	list := fl.BoolP("list", "l", false, "list the files whose formatting differs from mapper fmt's")
	write := fl.BoolP("write", "w", false, "write the result to the file instead of stdout")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mapper fmt [-l] [-w] [FILES|DIRS]\n\n"+
			"Formats .map files; with no arguments, the mappings/ directory.\n\nFlags:\n")
		fl.PrintDefaults()
	}
	if code, ok := parseFlags(fl, args, -1); !ok {
		return code
	}
	paths := fl.Args()
	if len(paths) == 0 {
		if st, err := os.Stat("mappings"); err == nil && st.IsDir() {
			paths = []string{"mappings"}
		} else {
			return usageError(fl, "no files given and no mappings/ directory here")
		}
	}
	inputs, ok := readMapFiles(paths, stderr)
	rc := 0
	if !ok {
		rc = 1
	}
	for _, in := range inputs {
		out, err := dsl.Format(in.path, in.src)
		if err != nil {
			if l := diag.AsList(err); l != nil {
				diag.WriteText(stderr, l, diag.Sources{in.path: in.src})
			} else {
				fmt.Fprintf(stderr, "mapper fmt: %s: %v\n", in.path, err)
			}
			rc = 1
			continue
		}
		changed := !bytes.Equal(in.src, out)
		if *list && changed {
			fmt.Fprintln(stdout, in.path)
		}
		if *write && changed {
			if err := writeFileAtomic(in.path, out); err != nil {
				fmt.Fprintf(stderr, "mapper fmt: %v\n", err)
				rc = 1
			}
		}
		if !*list && !*write {
			if _, err := stdout.Write(out); err != nil {
				fmt.Fprintf(stderr, "mapper fmt: %v\n", err)
				return 1
			}
		}
	}
	return rc
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory, keeping the file's permissions: readers see the old or
// the new content, never a part.
func writeFileAtomic(path string, data []byte) (err error) {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Chmod(st.Mode().Perm()); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
