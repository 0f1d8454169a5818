package configmap

import (
	"maps"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/ir"
)

// Config documents are nested map[string]any trees; these helpers address
// them by dotted path segments.

// setPath writes v at segs, creating intermediate maps. It reports false when
// a non-map value is in the way.
func setPath(doc map[string]any, segs []string, v any) bool {
	cur := doc
	for _, s := range segs[:len(segs)-1] {
		next, ok := cur[s]
		if !ok || next == nil {
			m := map[string]any{}
			cur[s] = m
			cur = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return false
		}
		cur = m
	}
	cur[segs[len(segs)-1]] = v
	return true
}

// mapAt returns the map at segs, creating it and the maps above it. It
// reports false when a non-map value is in the way.
func mapAt(doc map[string]any, segs []string) (map[string]any, bool) {
	cur := doc
	for _, s := range segs {
		next, ok := cur[s]
		if !ok || next == nil {
			m := map[string]any{}
			cur[s] = m
			cur = m
			continue
		}
		if cur, ok = next.(map[string]any); !ok {
			return nil, false
		}
	}
	return cur, true
}

func deletePath(doc map[string]any, segs []string) {
	cur := doc
	for _, s := range segs[:len(segs)-1] {
		m, ok := cur[s].(map[string]any)
		if !ok {
			return
		}
		cur = m
	}
	delete(cur, segs[len(segs)-1])
}

// leaves lists the dotted paths of every leaf (non-map value or empty map) of doc, sorted.
func leaves(doc map[string]any) []string {
	var out []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(p, sub)
				continue
			}
			out = append(out, p)
		}
	}
	walk("", doc)
	slices.Sort(out)
	return out
}

// leafPaths is leaves by segments, so that a key with a dot in its name
// ("transformers.js_config") stays one segment.
func leafPaths(doc map[string]any) [][]string {
	var out [][]string
	var walk func(prefix []string, m map[string]any)
	walk = func(prefix []string, m map[string]any) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			p := append(slices.Clip(prefix), k)
			if sub, ok := m[k].(map[string]any); ok && len(sub) > 0 {
				walk(p, sub)
				continue
			}
			out = append(out, p)
		}
	}
	walk(nil, doc)
	return out
}

// hasPrefix reports whether path is prefix or under it.
func hasPrefix(path, prefix []string) bool {
	return len(path) >= len(prefix) && slices.Equal(path[:len(prefix)], prefix)
}

// covers reports whether the claim path covers leaf: equal, or an ancestor.
func covers(claim, leaf string) bool {
	return claim == leaf || strings.HasPrefix(leaf, claim+".")
}

func split(p string) []string { return strings.Split(p, ".") }

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func pathString(p ir.Path) string { return strings.Join(p.Segs, ".") }
