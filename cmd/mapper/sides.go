package main

// The checkpoint sides mapper knows; each registers itself with engine/format.
import (
	_ "github.com/mapper-dev/mapper/engine/format/fastllm"
	_ "github.com/mapper-dev/mapper/engine/format/hf"
)
