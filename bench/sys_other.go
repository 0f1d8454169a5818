//go:build !linux

package main

import "errors"

func writeDirect(path string, n int64) error { return errors.New("O_DIRECT: Linux only") }

func memTotal() int64 { return 0 }
