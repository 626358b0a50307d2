package main

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcError turns a gRPC error into a message that says what to do. A
// wrapped status (the client's watch: …) is unwrapped to the server's own
// message.
func rpcError(what string, err error) error {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) || se.GRPCStatus() == nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	st := se.GRPCStatus()
	hint := ""
	switch st.Code() {
	case codes.Unavailable:
		hint = " (check that the servers in --server are running and that a majority of them is up)"
	case codes.Aborted:
		hint = " (the object changed since you read it: get it again and reapply)"
	case codes.Unknown:
		hint = " (read the object before retrying)"
	case codes.DeadlineExceeded:
		hint = " (raise --timeout or check the servers' health)"
	}
	return fmt.Errorf("%s: %s%s", what, st.Message(), hint)
}
