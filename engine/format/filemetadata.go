package format

import (
	"fmt"
	"maps"

	"github.com/mapper-dev/mapper/runtime/pyjson"
)

// SameFileMetadata reports whether two safetensors __metadata__ maps are
// the same: none (nil) differs from an empty one, as the files' bytes do.
func SameFileMetadata(a, b map[string]string) bool {
	return (a == nil) == (b == nil) && maps.Equal(a, b)
}

// DescribeFileMetadata prints a __metadata__ map for a message, as JSON
// ("none" for nil), cut after limit bytes when limit > 0.
func DescribeFileMetadata(m map[string]string, limit int) string {
	if m == nil {
		return "none"
	}
	b, err := pyjson.Encode(m, -1, true)
	if err != nil {
		return fmt.Sprintf("%v", m)
	}
	if limit > 0 && len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
