package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// choiceFlag is a string flag that takes one of a fixed set of words, so
// that a misspelt value is a usage error when the flags are parsed, before
// any work starts.
type choiceFlag struct {
	v       *string
	choices []string
}

func newChoice(v *string, def string, choices ...string) *choiceFlag {
	*v = def
	return &choiceFlag{v: v, choices: choices}
}

func (c *choiceFlag) String() string { return *c.v }
func (c *choiceFlag) Type() string   { return "string" }

func (c *choiceFlag) Set(s string) error {
	if !slices.Contains(c.choices, s) {
		return fmt.Errorf("want %s", orList(c.choices))
	}
	*c.v = s
	return nil
}

// orList writes words as "a, b or c".
func orList(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// countFlag is an int flag of at least min: a count of workers, say, is
// not silently raised from 0 or a negative number.
type countFlag struct {
	v   *int
	min int
}

func (c countFlag) String() string { return strconv.Itoa(*c.v) }
func (c countFlag) Type() string   { return "int" }

func (c countFlag) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return fmt.Errorf("out of range")
		}
		return fmt.Errorf("not a whole number")
	}
	if n < c.min {
		return fmt.Errorf("want at least %d", c.min)
	}
	*c.v = n
	return nil
}
