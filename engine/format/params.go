package format

import (
	"fmt"

	"github.com/mapper-dev/mapper/dsl/ir"
	"github.com/mapper-dev/mapper/runtime/tensor"
)

// ParamSchema is implemented by a side whose checkpoints are loaded by a
// program that builds its model from the config and refuses a checkpoint
// whose parameters differ from the ones it created (Fast-LLM). The planner
// holds every conversion to it: on import the tensors it will write, on
// export the tensors it reads, each against the parameters the config
// implies, before a byte moves.
type ParamSchema interface {
	// Params lists the parameters the program that mapping m writes for (or
	// reads from) creates for config: the side's config document as the
	// .map config rules address it. An error means the schema cannot
	// describe this config (or the mapping's target is unknown): the
	// conversion is refused rather than checked against a wrong set.
	// limit caps how many parameters (and loop iterations) the schema may
	// produce, since a config's sizes can be anything.
	Params(m *ir.Mapping, config map[string]any, limit int) (*Params, error)
}

// Params is the parameter set a program creates for one config.
type Params struct {
	// Program names it in messages: "Fast-LLM main".
	Program string
	List    []Param
}

// Param is one parameter: its logical tensor name, its shape, and the
// schema declaration that says so.
type Param struct {
	Name  string
	Shape tensor.Shape
	Pos   ir.Pos
	// Use and Part: the use of the schema part that declares it, when it is
	// declared in one (Use.Line is 0 otherwise).
	Use  ir.Pos
	Part string
}

// Where cites the declaration: the part's use when there is one, which is
// where the schema says what the part's parameters are.
func (p Param) Where() string {
	if p.Use.Line == 0 {
		return fmt.Sprintf("%s:%d", p.Pos.File, p.Pos.Line)
	}
	return fmt.Sprintf("%s:%d (part %s, line %d)", p.Use.File, p.Use.Line, p.Part, p.Pos.Line)
}
