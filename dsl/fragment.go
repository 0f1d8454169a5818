package dsl

import (
	"errors"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/dsl/diag"
	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/dsl/syntax"
	"github.com/mapper-dev/mapper/dsl/token"
)

// Fragments: `include "path"` reads a fragment file, `use NAME(...)` in a
// config block puts a fragment's items in its place, their left paths
// (and the left config names their expressions read) under the use's
// left prefix, their right paths under its right prefix, and `{p}` in
// their expressions replaced by the argument for p. The check and the
// rules hash then see the mapping as if the items were written there
// (positions still in the fragment file), so a mapping that uses a
// fragment hashes as the same mapping with the fragment copied in, and a
// changed fragment changes the hash of every mapping that uses it.

// expander expands the uses of one mapping.
type expander struct {
	dir        fs.FS  // the including file's directory: include paths stay in it
	display    string // that directory as diagnostics name it
	builtin    fs.FS  // where an include dir lacks is read from; nil: nowhere
	builtinDir string // builtin as diagnostics name it
	lets       map[string]bool
	frags      map[string]*fragment // by name, from every included file
	sources    map[string][]byte    // the included files' text, by display name
	diags      diag.List
	// uses records each fragment put in place, with its use chain, for
	// diagnostics' Via.
	uses []ir.FragmentUse
}

// fragment is one declared fragment and the file that declares it.
type fragment struct {
	decl  *syntax.FragmentDecl
	file  *syntax.FragmentFile
	local map[string]*syntax.FragmentDecl // its file's fragments: those it may use
	bad   bool                            // its file has errors: uses of it are not expanded
}

// env is what a fragment's items are put in place with: the prefixes and
// the arguments of its use.
type env struct {
	frag        *fragment // nil: the mapping's own items, taken as they are
	left, right []syntax.Seg
	args        map[string]syntax.Expr
	via         []token.Pos // the use chain, innermost first
	lets        map[string]bool
}

// expand returns f with its includes read and its uses put in place (a
// use of no included fragment is an error), and the included files' text.
func expand(f *syntax.File, dir func() (fs.FS, error), display string, builtin fs.FS, builtinDir string) (*syntax.File, map[string][]byte, *expander) {
	x := &expander{display: display, builtin: builtin, builtinDir: builtinDir, lets: map[string]bool{}, frags: map[string]*fragment{}, sources: map[string][]byte{}}
	var decls []syntax.Decl
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *syntax.LetDecl:
			x.lets[d.Name.Name] = true
		case *syntax.IncludeDecl:
			if x.dir == nil {
				root, err := dir()
				switch {
				case errors.Is(err, fs.ErrNotExist) && builtin != nil:
					root = emptyFS{} // only the fallback then
				case err != nil:
					x.diags.Errorf(d.Path.Pos, d.Path.End, "cannot read fragment file %q: %v", d.Path.Value, err)
					continue
				}
				x.dir = root
			}
			x.include(d)
			continue
		}
		decls = append(decls, d)
	}
	top := &env{lets: x.lets}
	for i, d := range decls {
		switch d := d.(type) {
		case *syntax.ConfigBlock:
			decls[i] = x.block(d, top)
		case *syntax.VariantDecl:
			v := *d
			v.Blocks = slices.Clone(d.Blocks)
			for j, b := range v.Blocks {
				if cb, ok := b.(*syntax.ConfigBlock); ok {
					v.Blocks[j] = x.block(cb, top)
				}
			}
			decls[i] = &v
		}
	}
	out := *f
	out.Decls = decls
	return &out, x.sources, x
}

func (x *expander) block(b *syntax.ConfigBlock, e *env) *syntax.ConfigBlock {
	out := *b
	out.Items = x.items(b.Items, e)
	return &out
}

// include reads and checks one fragment file and registers its fragments.
func (x *expander) include(d *syntax.IncludeDecl) {
	p := d.Path.Value
	if !fs.ValidPath(p) || p == "." || !strings.HasSuffix(p, ".map") {
		x.diags.Add(diag.Error, d.Path.Pos, d.Path.End, "an include names a .map file below the including file's directory, with / between names",
			"include path %q leaves the including file's directory or is not a .map file", p)
		return
	}
	name := filepath.Join(x.display, filepath.FromSlash(p))
	src, err := fs.ReadFile(x.dir, p)
	if errors.Is(err, fs.ErrNotExist) && x.builtin != nil {
		if b, berr := fs.ReadFile(x.builtin, p); berr == nil {
			name, src, err = path.Join(x.builtinDir, p), b, nil
		}
	}
	if _, dup := x.sources[name]; dup {
		x.diags.Errorf(d.Path.Pos, d.Path.End, "%s is included twice", name)
		return
	}
	if err != nil {
		x.diags.Errorf(d.Path.Pos, d.Path.End, "cannot read fragment file %s: %v", name, unwrapPath(err))
		return
	}
	x.sources[name] = src
	ff, diags := syntax.ParseFragments(name, src)
	if ff != nil {
		diags = append(diags, checkFragments(ff)...)
	}
	for i := range diags {
		diags[i].Via = []token.Pos{d.Pos}
	}
	x.diags = append(x.diags, diags...)
	if ff == nil {
		return
	}
	local := map[string]*syntax.FragmentDecl{}
	for _, fd := range ff.Frags {
		local[fd.Name.Name] = fd
	}
	for _, fd := range ff.Frags {
		if prev, dup := x.frags[fd.Name.Name]; dup {
			if prev.file != ff {
				x.diags.Add(diag.Error, fd.Name.Pos, fd.Name.End, "", "fragment %s is also declared at %s, which the mapping includes too",
					fd.Name.Name, prev.decl.Name.Pos.FileLine())
			}
			continue
		}
		x.frags[fd.Name.Name] = &fragment{decl: fd, file: ff, local: local, bad: diags.HasErrors()}
	}
}

// emptyFS is a directory with nothing in it.
type emptyFS struct{}

func (emptyFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// unwrapPath drops the path an fs error repeats, which the message names.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// items returns the items with e applied and every use put in place.
func (x *expander) items(items []syntax.ConfigItem, e *env) []syntax.ConfigItem {
	var out []syntax.ConfigItem
	for _, it := range items {
		switch it := it.(type) {
		case *syntax.UseItem:
			u := *it
			if u.Expanded = x.use(it, e); u.Expanded == nil {
				u.Expanded = []syntax.ConfigItem{}
			}
			out = append(out, &u)
		case *syntax.ConfigWhen:
			w := *it
			w.Cond = e.expr(x, it.Cond)
			w.Then = x.items(it.Then, e)
			if it.Else != nil {
				el := *it.Else
				el.Items = x.items(it.Else.Items, e)
				w.Else = &el
			}
			out = append(out, &w)
		case *syntax.ConfigEach:
			c := *it
			c.Nodes = nil
			for _, n := range it.Nodes {
				c.Nodes = append(c.Nodes, &syntax.NodePair{Span: n.Span, Left: e.path(n.Left, false), Right: e.path(n.Right, true)})
			}
			c.Items = x.items(it.Items, e)
			out = append(out, &c)
		case *syntax.KeepItem:
			k := *it
			k.Keys = nil
			for _, n := range it.Keys {
				k.Keys = append(k.Keys, e.path(n, false))
			}
			out = append(out, &k)
		case *syntax.ConstItem:
			c := *it
			c.Key = e.path(it.Key, it.Right)
			c.Value = e.expr(x, it.Value)
			out = append(out, &c)
		case *syntax.RenameItem:
			r := *it
			r.Left = e.path(it.Left, false)
			r.LeftDefault, r.LeftFor, r.RightDefault = e.expr(x, it.LeftDefault), e.expr(x, it.LeftFor), e.expr(x, it.RightDefault)
			r.Right = nil
			for _, n := range it.Right {
				r.Right = append(r.Right, e.path(n, true))
			}
			r.Map = e.table(x, it.Map)
			out = append(out, &r)
		case *syntax.CycleItem:
			c := *it
			c.Left, c.Right = e.path(it.Left, false), e.path(it.Right, true)
			c.Length = e.expr(x, it.Length)
			c.Table = e.table(x, it.Table)
			out = append(out, &c)
		default: // *syntax.RefuseItem: nothing to apply
			out = append(out, it)
		}
	}
	return out
}

// use puts the fragment a use names in its place.
func (x *expander) use(u *syntax.UseItem, e *env) []syntax.ConfigItem {
	var f *fragment
	if e.frag == nil {
		f = x.frags[u.Name.Name]
		if f == nil {
			names := make([]string, 0, len(x.frags))
			for n := range x.frags {
				names = append(names, n)
			}
			slices.Sort(names)
			hint := diag.DidYouMean(u.Name.Name, names)
			if len(names) == 0 {
				hint = `a fragment comes from a fragment file the mapping includes: include "fragments/NAME.map"`
			}
			x.diags.Add(diag.Error, u.Name.Pos, u.Name.End, hint, "unknown fragment %s", u.Name.Name)
			return nil
		}
	} else {
		// checkFragments has resolved the uses inside a fragment file.
		f = &fragment{decl: e.frag.local[u.Name.Name], file: e.frag.file, local: e.frag.local}
	}
	if f.bad || f.decl == nil {
		return nil // its file's errors are reported
	}
	left, right, args, diags := bindArgs(u, f.decl)
	if len(diags) > 0 {
		x.diags = append(x.diags, diags...)
		return nil
	}
	inner := &env{frag: f, args: map[string]syntax.Expr{}, via: append([]token.Pos{u.Pos}, e.via...), lets: e.lets}
	inner.left = slices.Concat(e.left, e.segs(left, false))
	inner.right = slices.Concat(e.right, e.segs(right, true))
	for p, a := range args {
		inner.args[p] = e.expr(x, a)
	}
	x.uses = append(x.uses, ir.FragmentUse{Pos: f.decl.Pos, End: f.decl.End, Chain: inner.via})
	return x.items(f.decl.Items, inner)
}

// bindArgs checks a use's arguments against the fragment's parameters and
// returns the prefixes (nil: none) and the parameters' arguments.
func bindArgs(u *syntax.UseItem, fd *syntax.FragmentDecl) (left, right *syntax.Name, args map[string]syntax.Expr, diags diag.List) {
	args = map[string]syntax.Expr{}
	params := make([]string, len(fd.Params))
	for i, p := range fd.Params {
		params[i] = p.Name
	}
	seen := map[string]bool{}
	for _, a := range u.Args {
		n := a.Name.Name
		if seen[n] {
			diags.Errorf(a.Name.Pos, a.Name.End, "%s is given twice", n)
			continue
		}
		seen[n] = true
		switch {
		case n == "left" || n == "right":
			ne, ok := a.Value.(*syntax.NameExpr)
			if !ok {
				diags.Errorf(a.Value.Range().Pos, a.Value.Range().End, "%s = takes a config path, the prefix of the fragment's %s paths", n, n)
				continue
			}
			if n == "left" {
				left = ne.Name
			} else {
				right = ne.Name
			}
		case slices.Contains(params, n):
			args[n] = a.Value
		default:
			diags.Add(diag.Error, a.Name.Pos, a.Name.End, diag.DidYouMean(n, params), "fragment %s has no parameter %s (its parameters: %s)",
				fd.Name.Name, n, orNone(params))
		}
	}
	for _, p := range params {
		if !seen[p] {
			diags.Errorf(u.Name.Pos, u.Name.End, "use of fragment %s gives no %s (declared at %s)", fd.Name.Name, p, fd.Name.Pos.FileLine())
		}
	}
	return left, right, args, diags
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// segs is a use's prefix with e applied (a use inside a fragment is under
// the fragment's own prefixes).
func (e *env) segs(n *syntax.Name, right bool) []syntax.Seg {
	if n == nil {
		return nil
	}
	return e.path(n, right).Segs
}

// path puts a config path under e's prefix for its side. A path that
// starts with a config each's node ({b}.x) stays: the node is already
// under the prefix the each's patterns got. (A parameter is no path:
// checkFragments has said so.)
func (e *env) path(n *syntax.Name, right bool) *syntax.Name {
	if e.frag == nil || n == nil {
		return n
	}
	if n.Segs[0].Kind == syntax.SegVar {
		return n
	}
	pre := e.left
	if right {
		pre = e.right
	}
	out := *n
	out.Segs = slices.Concat(pre, n.Segs)
	return &out
}

// expr applies e to an expression: {p} becomes p's argument, a left
// config name goes under the left prefix.
func (e *env) expr(x *expander, ex syntax.Expr) syntax.Expr {
	if e.frag == nil || ex == nil {
		return ex
	}
	switch ex := ex.(type) {
	case *syntax.NameExpr:
		s := ex.Name.Segs[0]
		if s.Kind == syntax.SegVar {
			if a, ok := e.args[s.Text]; ok && len(ex.Name.Segs) == 1 {
				return a
			}
			return ex
		}
		if e.lets[s.Text] && len(e.left) == 0 {
			x.diags.Add(diag.Error, ex.Pos, ex.End, "give the value as an argument: use "+e.frag.decl.Name.Name+"(p = "+s.Text+"), {p} in the fragment",
				"fragment %s reads %s, a let of the mapping that uses it: a fragment's names are left config paths", e.frag.decl.Name.Name, s.Text)
			return ex
		}
		out := *ex
		n := *ex.Name
		n.Segs = slices.Concat(e.left, n.Segs)
		out.Name = &n
		return &out
	case *syntax.ListExpr:
		out := *ex
		out.Elems = e.exprs(x, ex.Elems)
		return &out
	case *syntax.ObjectExpr:
		out := *ex
		out.Entries = nil
		for _, en := range ex.Entries {
			c := *en
			c.Value = e.expr(x, en.Value)
			out.Entries = append(out.Entries, &c)
		}
		return &out
	case *syntax.IndexExpr:
		out := *ex
		out.X, out.Index = e.expr(x, ex.X), e.expr(x, ex.Index)
		return &out
	case *syntax.CallExpr:
		out := *ex
		out.Args = e.exprs(x, ex.Args)
		return &out
	case *syntax.UnaryExpr:
		out := *ex
		out.X = e.expr(x, ex.X)
		return &out
	case *syntax.BinaryExpr:
		out := *ex
		out.X, out.Y = e.expr(x, ex.X), e.expr(x, ex.Y)
		return &out
	}
	return ex // a literal
}

func (e *env) exprs(x *expander, list []syntax.Expr) []syntax.Expr {
	var out []syntax.Expr
	for _, a := range list {
		out = append(out, e.expr(x, a))
	}
	return out
}

func (e *env) table(x *expander, t *syntax.ValueTable) *syntax.ValueTable {
	if e.frag == nil || t == nil {
		return t
	}
	out := *t
	out.Entries = nil
	// A bare identifier in a table is the string it spells, not a name:
	// only {p} is replaced.
	entry := func(v syntax.Expr) syntax.Expr {
		if ne, ok := v.(*syntax.NameExpr); ok && ne.Name.Segs[0].Kind == syntax.SegVar {
			return e.expr(x, v)
		}
		return v
	}
	for _, en := range t.Entries {
		c := *en
		c.Left, c.Right = entry(en.Left), entry(en.Right)
		out.Entries = append(out.Entries, &c)
	}
	return &out
}

// via sets the use chain of each diagnostic inside a fragment that was
// put in place (ir.Mapping.Via).
func (x *expander) via(diags diag.List) {
	m := &ir.Mapping{Uses: x.uses}
	for i, d := range diags {
		if d.Via == nil {
			diags[i].Via = m.Via(d.Pos)
		}
	}
}

// checkFragments checks a fragment file on its own: names and parameters
// declared once, parameters used, placeholders that name a parameter or a
// config each's node, uses of the file's own fragments with the right
// arguments, and no fragment that uses itself. The rules themselves are
// checked where a mapping uses the fragment.
func checkFragments(ff *syntax.FragmentFile) diag.List {
	var diags diag.List
	byName := map[string]*syntax.FragmentDecl{}
	for _, fd := range ff.Frags {
		if prev, dup := byName[fd.Name.Name]; dup {
			diags.Errorf(fd.Name.Pos, fd.Name.End, "fragment %s is already declared at line %d", fd.Name.Name, prev.Name.Pos.Line)
			continue
		}
		byName[fd.Name.Name] = fd
	}
	for _, fd := range ff.Frags {
		params := map[string]bool{} // declared: whether used
		for _, p := range fd.Params {
			if _, dup := params[p.Name]; dup {
				diags.Errorf(p.Pos, p.End, "parameter %s is declared twice", p.Name)
			}
			params[p.Name] = false
		}
		walkFragment(fd.Items, nil, func(n *syntax.Name, nodes []string, inExpr bool) {
			s := n.Segs[0]
			if s.Kind != syntax.SegVar {
				return
			}
			if _, ok := params[s.Text]; ok {
				params[s.Text] = true
				switch {
				case !inExpr:
					diags.Add(diag.Error, n.Pos, n.End, "write the path itself: the use's left = and right = put it under a prefix",
						"{%s} is a parameter of fragment %s: it stands for a value, not a config path", s.Text, fd.Name.Name)
				case len(n.Segs) > 1 || s.Off != 0:
					diags.Errorf(n.Pos, n.End, "{%s} is a parameter of fragment %s: it stands for a value, so it is written alone", s.Text, fd.Name.Name)
				}
			} else if !slices.Contains(nodes, s.Text) {
				diags.Add(diag.Error, n.Pos, n.End, diag.DidYouMean(s.Text, slices.Sorted(maps.Keys(params))),
					"{%s} is not a parameter of fragment %s (its parameters: %s)", s.Text, fd.Name.Name, orNone(paramNames(fd)))
			}
		}, func(u *syntax.UseItem) {
			callee := byName[u.Name.Name]
			if callee == nil {
				names := slices.Sorted(maps.Keys(byName))
				diags.Add(diag.Error, u.Name.Pos, u.Name.End, diag.DidYouMean(u.Name.Name, names),
					"unknown fragment %s: a fragment uses only the fragments of its own file", u.Name.Name)
				return
			}
			_, _, _, d := bindArgs(u, callee)
			diags = append(diags, d...)
		})
		for _, p := range fd.Params {
			if !params[p.Name] {
				diags.Add(diag.Warning, p.Pos, p.End, "", "parameter %s of fragment %s is never used", p.Name, fd.Name.Name)
			}
		}
	}
	// A fragment that uses itself, directly or not, would never end.
	state := map[*syntax.FragmentDecl]int{} // 1: on the path, 2: done
	var visit func(fd *syntax.FragmentDecl, path []string)
	visit = func(fd *syntax.FragmentDecl, path []string) {
		state[fd] = 1
		walkFragment(fd.Items, nil, nil, func(u *syntax.UseItem) {
			callee := byName[u.Name.Name]
			switch {
			case callee == nil:
			case state[callee] == 1:
				loop := append(slices.Clone(path), fd.Name.Name)
				loop = append(loop[slices.Index(loop, callee.Name.Name):], callee.Name.Name)
				diags.Errorf(u.Name.Pos, u.Name.End, "fragment %s uses itself: %s", callee.Name.Name, strings.Join(loop, " -> "))
			case state[callee] == 0:
				visit(callee, append(path, fd.Name.Name))
			}
		})
		state[fd] = 2
	}
	for _, fd := range ff.Frags {
		if state[fd] == 0 {
			visit(fd, nil)
		}
	}
	return diags.Sort()
}

func paramNames(fd *syntax.FragmentDecl) []string {
	out := make([]string, len(fd.Params))
	for i, p := range fd.Params {
		out[i] = p.Name
	}
	return out
}

// walkFragment calls name for every name in the items (config paths, and
// with inExpr names in expressions; with the node variables of the config
// eaches around it) and use for every use.
func walkFragment(items []syntax.ConfigItem, nodes []string, name func(n *syntax.Name, nodes []string, inExpr bool), use func(*syntax.UseItem)) {
	if name == nil {
		name = func(*syntax.Name, []string, bool) {}
	}
	path := func(n *syntax.Name) { name(n, nodes, false) }
	expr := func(e syntax.Expr) {
		syntax.ExprNames(e, func(n *syntax.Name) { name(n, nodes, true) })
	}
	table := func(t *syntax.ValueTable) {
		if t != nil {
			for _, en := range t.Entries {
				expr(en.Left)
				expr(en.Right)
			}
		}
	}
	for _, it := range items {
		switch it := it.(type) {
		case *syntax.UseItem:
			for _, a := range it.Args {
				if a.Name.Name == "left" || a.Name.Name == "right" {
					if ne, ok := a.Value.(*syntax.NameExpr); ok {
						path(ne.Name)
					}
					continue
				}
				expr(a.Value)
			}
			use(it)
		case *syntax.ConfigWhen:
			expr(it.Cond)
			walkFragment(it.Then, nodes, name, use)
			if it.Else != nil {
				walkFragment(it.Else.Items, nodes, name, use)
			}
		case *syntax.ConfigEach:
			for _, n := range it.Nodes {
				path(n.Left)
				path(n.Right)
			}
			walkFragment(it.Items, append(slices.Clone(nodes), it.Var.Name), name, use)
		case *syntax.KeepItem:
			for _, n := range it.Keys {
				path(n)
			}
		case *syntax.ConstItem:
			path(it.Key)
			expr(it.Value)
		case *syntax.RenameItem:
			path(it.Left)
			for _, n := range it.Right {
				path(n)
			}
			for _, e := range []syntax.Expr{it.LeftDefault, it.LeftFor, it.RightDefault} {
				expr(e)
			}
			table(it.Map)
		case *syntax.CycleItem:
			path(it.Left)
			path(it.Right)
			expr(it.Length)
			table(it.Table)
		}
	}
}

// LintFragments checks a fragment file on its own (`mapper lint`): its
// syntax and what checkFragments checks. Its rules are checked in the
// mappings that use it.
func LintFragments(filename string, src []byte) diag.List {
	ff, diags := syntax.ParseFragments(filename, src)
	if ff == nil {
		return diags
	}
	return append(diags, checkFragments(ff)...).Sort()
}
