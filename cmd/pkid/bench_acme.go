package main

import (
	"context"
	"errors"
)

func prepareACME(_ context.Context, _ *benchFlags) (op, error) {
	return nil, errors.New("acme mode: not yet")
}
