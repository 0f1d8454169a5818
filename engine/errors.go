package engine

import "errors"

// joinErrors reports every problem a plan found together, so that a user
// fixes them in one go: one error as itself, several joined (one per line,
// each reachable with errors.As).
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
