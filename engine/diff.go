package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/mapper-dev/mapper/engine/format"
	"github.com/mapper-dev/mapper/runtime/fault"
	"github.com/mapper-dev/mapper/runtime/kernels"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// DiffKind classifies one tensor of a comparison.
type DiffKind int

const (
	// Identical: same dtype, shape and bytes.
	Identical DiffKind = iota
	// EqualValues: same shape and values, different dtype.
	EqualValues
	// Different: same shape, different values (MaxAbs says how much).
	Different
	// ShapeDiffers: the shapes or the dtypes are incomparable.
	ShapeDiffers
	// OnlyInA / OnlyInB: the tensor is missing on one side.
	OnlyInA
	OnlyInB
)

func (k DiffKind) String() string {
	return [...]string{"identical", "equal values", "different", "shape differs", "only in A", "only in B"}[k]
}

// TensorDiff is the comparison of one tensor.
type TensorDiff struct {
	Name   string
	Kind   DiffKind
	MaxAbs float64 // for Different: the largest absolute difference (NaN vs number: +Inf)
	Detail string
}

// DiffReport compares two checkpoints tensor by tensor and, when they are
// of the same side, file by file.
type DiffReport struct {
	SideA, SideB string
	Tensors      []TensorDiff
	// Files compares every file of the two directories (see diffFiles), so
	// that a difference the tensors do not show (a shard's __metadata__,
	// config.json's bytes, a side file) is not missed; nil when the sides
	// differ, as files of two sides have nothing to compare.
	Files []FileDiff
}

// Same reports whether no tensor differs in value.
func (r *DiffReport) Same() bool {
	return !slices.ContainsFunc(r.Tensors, func(d TensorDiff) bool { return d.Kind > EqualValues })
}

// SameFiles reports whether every file compared is identical (true when
// no file was compared).
func (r *DiffReport) SameFiles() bool {
	return !slices.ContainsFunc(r.Files, func(d FileDiff) bool { return d.Kind != FileIdentical })
}

// OpenAny opens a checkpoint of whichever registered side it is.
func OpenAny(dir string) (*format.Source, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a checkpoint directory", dir)
	}
	sides := format.Detect(dir, format.Names()...)
	switch len(sides) {
	case 0:
		return nil, fmt.Errorf("%s: neither a checkpoint of %s (none of their files is there)", dir, strings.Join(format.Names(), " nor "))
	case 1:
	default:
		return nil, fmt.Errorf("%s: cannot tell the checkpoint side: it looks like %s", dir, strings.Join(sides, " and "))
	}
	f, err := format.Lookup(sides[0])
	if err != nil {
		return nil, err
	}
	return f.Open(dir)
}

// Diff compares the tensors of two checkpoint directories by logical name
// and, for two checkpoints of one side, every file.
func Diff(a, b string) (*DiffReport, error) {
	sa, err := OpenAny(a)
	if err != nil {
		return nil, err
	}
	defer sa.Close()
	sb, err := OpenAny(b)
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	r, err := diffSources(sa, sb)
	if err != nil {
		return nil, err
	}
	if sa.Format == sb.Format {
		if r.Files, err = diffFiles(sa, sb, r.Tensors); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// diffSources compares two opened checkpoints.
func diffSources(sa, sb *format.Source) (*DiffReport, error) {
	r := &DiffReport{SideA: sa.Format, SideB: sb.Format}
	for _, ta := range sa.Tensors {
		tb, ok := sb.Lookup(ta.Name)
		if !ok {
			r.Tensors = append(r.Tensors, TensorDiff{Name: ta.Name, Kind: OnlyInA})
			continue
		}
		// Both sides are mapped: a file truncated meanwhile faults, and
		// the guard makes that an error naming it.
		var d TensorDiff
		err := fault.Guard(func() (err error) {
			d, err = compareTensors(ta, tb)
			return err
		})
		if err != nil {
			return nil, err
		}
		r.Tensors = append(r.Tensors, d)
	}
	for _, tb := range sb.Tensors {
		if _, ok := sa.Lookup(tb.Name); !ok {
			r.Tensors = append(r.Tensors, TensorDiff{Name: tb.Name, Kind: OnlyInB})
		}
	}
	slices.SortFunc(r.Tensors, func(x, y TensorDiff) int { return naturalCompare(x.Name, y.Name) })
	return r, nil
}

func compareTensors(a, b format.Tensor) (TensorDiff, error) {
	d := TensorDiff{Name: a.Name}
	da, err := a.File.Data(a.Info.Name)
	if err != nil {
		return d, err
	}
	db, err := b.File.Data(b.Info.Name)
	if err != nil {
		return d, err
	}
	if !a.Shape.Equal(b.Shape) {
		d.Kind, d.Detail = ShapeDiffers, fmt.Sprintf("%v%v vs %v%v", a.DType, a.Shape, b.DType, b.Shape)
		return d, nil
	}
	if a.DType == b.DType && bytes.Equal(da, db) {
		d.Kind = Identical
		return d, nil
	}
	if !isFloat(a.DType) || !isFloat(b.DType) {
		d.Kind = Different
		if a.DType != b.DType {
			d.Kind, d.Detail = ShapeDiffers, fmt.Sprintf("%v vs %v", a.DType, b.DType)
		} else {
			d.Detail = "bytes differ"
			d.MaxAbs = math.NaN()
		}
		return d, nil
	}
	// Compare values in slices so that memory stays small for any size.
	const chunk = 1 << 20
	n := int(a.Shape.Numel())
	same := true
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		fa := asFloat32(da[lo*a.DType.Size():hi*a.DType.Size()], a.DType)
		fb := asFloat32(db[lo*b.DType.Size():hi*b.DType.Size()], b.DType)
		for i := range fa {
			x, y := float64(fa[i]), float64(fb[i])
			if x == y || (math.IsNaN(x) && math.IsNaN(y)) {
				continue
			}
			same = false
			diff := math.Abs(x - y)
			if math.IsNaN(diff) {
				diff = math.Inf(1)
			}
			d.MaxAbs = max(d.MaxAbs, diff)
		}
	}
	d.Kind = Different
	if same {
		d.Kind = EqualValues
		if a.DType == b.DType {
			d.Detail = "same values, different bytes (NaN payload or -0)"
			d.Kind = Different
		}
	}
	return d, nil
}

func isFloat(dt tensor.DType) bool {
	return dt == tensor.F32 || dt == tensor.BF16 || dt == tensor.F16 || dt == tensor.F8_E4M3 || dt == tensor.F8_E5M2
}

// asFloat32 widens float data to float32 values (exact for every dtype
// isFloat accepts).
func asFloat32(data []byte, dt tensor.DType) []float32 {
	f32 := data
	if dt != tensor.F32 {
		f32 = make([]byte, len(data)/dt.Size()*4)
		_ = kernels.Convert(f32, tensor.F32, data, dt) // supported for every isFloat dtype
	}
	out := make([]float32, len(f32)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(f32[4*i:]))
	}
	return out
}
