package main

import (
	"context"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// errUnchanged, returned by an update function, ends update without writing.
var errUnchanged = &unchanged{}

type unchanged struct{}

func (*unchanged) Error() string { return "unchanged" }

// update reads an object, lets change modify a copy of it, and writes it
// back with its resourceVersion as a precondition, reading again when
// another writer got there first. It returns the object as written (or as
// read, when change answered errUnchanged) and whether it wrote.
func update(ctx context.Context, c *client.Client, req *meshfedv1.GetRequest, change func(*meshfedv1.Object) error) (*meshfedv1.Object, bool, error) {
	for attempt := 0; ; attempt++ {
		got, err := c.Get(ctx, req)
		if err != nil {
			return nil, false, err
		}
		o := proto.Clone(got.GetObject()).(*meshfedv1.Object)
		if err := change(o); err == errUnchanged {
			return got.GetObject(), false, nil
		} else if err != nil {
			return nil, false, err
		}
		resp, err := c.Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{o}})
		if status.Code(err) == codes.Aborted && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		return resp.GetObjects()[0], true, nil
	}
}
