package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
)

// MeshfedLeader returns the gRPC address of the current leader, from the
// operator API's peer list.
func MeshfedLeader(ctx context.Context, addrs []string) (string, error) {
	c, err := client.New(addrs)
	if err != nil {
		return "", err
	}
	defer c.Close()
	var resp *meshfedv1.ListPeersResponse
	err = c.Do(ctx, func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = client.Operator(conn).ListPeers(ctx, &meshfedv1.ListPeersRequest{})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("list peers: %w", err)
	}
	for _, p := range resp.GetPeers() {
		if p.GetLeader() && p.GetGrpcAddress() != "" {
			return p.GetGrpcAddress(), nil
		}
	}
	return "", errors.New("no peer is marked leader")
}

const etcdStatusMethod = "/etcdserverpb.Maintenance/Status"

// EtcdLeader returns the client address of the etcd member that leads: the
// one whose Status names itself (header.member_id) as the leader.
func EtcdLeader(ctx context.Context, addrs []string) (string, error) {
	for _, a := range addrs {
		conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return "", fmt.Errorf("dial etcd: %w", err)
		}
		req, resp := []byte{}, []byte{}
		err = conn.Invoke(ctx, etcdStatusMethod, &req, &resp, grpc.ForceCodec(rawCodec{}))
		conn.Close()
		if err != nil {
			return "", fmt.Errorf("etcd status of %s: %w", a, err)
		}
		member, leader, err := decodeEtcdStatus(resp)
		if err != nil {
			return "", fmt.Errorf("etcd status of %s: %w", a, err)
		}
		if member != 0 && member == leader {
			return a, nil
		}
	}
	return "", errors.New("no etcd member reports itself as the leader")
}

// decodeEtcdStatus reads header.member_id (StatusResponse field 1, field 2
// inside) and leader (field 4) from an etcdserverpb.StatusResponse.
func decodeEtcdStatus(b []byte) (member, leader uint64, err error) {
	bad := errors.New("malformed StatusResponse")
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, bad
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			h, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, 0, bad
			}
			b = b[n:]
			for len(h) > 0 {
				hn, ht, m := protowire.ConsumeTag(h)
				if m < 0 {
					return 0, 0, bad
				}
				h = h[m:]
				if hn == 2 && ht == protowire.VarintType {
					v, m := protowire.ConsumeVarint(h)
					if m < 0 {
						return 0, 0, bad
					}
					member, h = v, h[m:]
					continue
				}
				if m = protowire.ConsumeFieldValue(hn, ht, h); m < 0 {
					return 0, 0, bad
				}
				h = h[m:]
			}
		case num == 4 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, 0, bad
			}
			leader, b = v, b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, 0, bad
			}
			b = b[n:]
		}
	}
	return member, leader, nil
}
