package syntax

import (
	"fmt"
	"reflect"
	"strings"
)

// Dump prints a node as an indented tree without positions or comments, for
// golden tests and for comparing two parses (the formatter's round trip).
func Dump(n Node) string {
	var b strings.Builder
	dump(&b, reflect.ValueOf(n), 0)
	return b.String()
}

var (
	spanType = reflect.TypeOf(Span{})
	posType  = reflect.TypeOf(Pos{})
	nameType = reflect.TypeOf(&Name{})
)

func dump(b *strings.Builder, v reflect.Value, depth int) {
	indent := strings.Repeat("  ", depth)
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			b.WriteString("nil\n")
			return
		}
		dump(b, v.Elem(), depth)
		return
	case reflect.Pointer:
		if v.IsNil() {
			b.WriteString("nil\n")
			return
		}
		if v.Type() == nameType {
			fmt.Fprintf(b, "Name %q\n", v.Interface().(*Name).String())
			return
		}
		switch x := v.Interface().(type) {
		case *Ident:
			fmt.Fprintf(b, "Ident %q\n", x.Name)
			return
		case *IntLit:
			fmt.Fprintf(b, "IntLit %d\n", x.Value)
			return
		case *FloatLit:
			fmt.Fprintf(b, "FloatLit %s\n", formatFloat(x.Value))
			return
		case *StringLit:
			fmt.Fprintf(b, "StringLit %q\n", x.Value)
			return
		case *BoolLit:
			fmt.Fprintf(b, "BoolLit %v\n", x.Value)
			return
		case *NullLit:
			b.WriteString("NullLit\n")
			return
		case *NameExpr:
			fmt.Fprintf(b, "NameExpr %q\n", x.Name.String())
			return
		}
		dump(b, v.Elem(), depth)
		return
	case reflect.Struct:
		t := v.Type()
		b.WriteString(t.Name() + "\n")
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Type == spanType || f.Type == posType || f.Name == "Comments" {
				continue
			}
			fv := v.Field(i)
			if fv.IsZero() {
				continue // nil pointers and empty lists say nothing
			}
			if fv.Kind() == reflect.Slice {
				fmt.Fprintf(b, "%s  %s:", indent, f.Name)
			} else {
				fmt.Fprintf(b, "%s  %s: ", indent, f.Name)
			}
			dump(b, fv, depth+1)
		}
		return
	case reflect.Slice:
		b.WriteString("\n")
		for i := range v.Len() {
			fmt.Fprintf(b, "%s  - ", indent)
			dump(b, v.Index(i), depth+1)
		}
		return
	case reflect.String:
		fmt.Fprintf(b, "%q\n", v.String())
		return
	case reflect.Float64:
		fmt.Fprintf(b, "%s\n", formatFloat(v.Float()))
		return
	}
	fmt.Fprintf(b, "%v\n", v.Interface())
}
