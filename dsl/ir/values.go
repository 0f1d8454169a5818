package ir

// Config documents are nested map[string]any trees of the values Eval works
// on; these helpers are shared by the checker (sample configs) and the
// engine (real configs).

// LookupPath returns the value at a dotted path of a config document.
func LookupPath(doc map[string]any, path []string) (any, bool) {
	var cur any = doc
	for _, seg := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// DeepCopy copies a config value so that the copy shares no map or list.
func DeepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = DeepCopy(x)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = DeepCopy(x)
		}
		return l
	}
	return v
}
