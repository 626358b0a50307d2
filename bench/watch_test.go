package bench

import (
	"slices"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// namesOf reads b with namesCodec.
func namesOf(b []byte) ([]string, error) {
	var w watchNames
	err := namesCodec{encoding.GetCodecV2(gproto.Name)}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &w)
	return w.names, err
}

// fullNames decodes b as a WatchResponse and returns its objects' names.
func fullNames(b []byte) ([]string, error) {
	var resp meshfedv1.WatchResponse
	if err := proto.Unmarshal(b, &resp); err != nil {
		return nil, err
	}
	var out []string
	for _, ev := range resp.GetEvents() {
		out = append(out, objects.Meta(ev.GetObject()).GetName())
	}
	return out, nil
}

func TestWatchNamesReadsWhatAFullDecodeReads(t *testing.T) {
	resp := &meshfedv1.WatchResponse{Revision: 9, Events: []*meshfedv1.Event{
		{Type: meshfedv1.EventType_EVENT_TYPE_PUT, Revision: 8, Object: benchCluster("w-1", make([]byte, 900))},
		{Type: meshfedv1.EventType_EVENT_TYPE_DELETE, Revision: 9, Object: benchCluster("w-sync", nil), PreviousAgent: "a"},
	}}
	b, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := namesOf(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"w-1", "w-sync"}; !slices.Equal(got, want) {
		t.Fatalf("names %q, want %q", got, want)
	}
	if _, err := namesOf(b[:len(b)-3]); err == nil {
		t.Fatal("a truncated response read without an error")
	}
}

func FuzzWatchNames(f *testing.F) {
	b, _ := proto.Marshal(&meshfedv1.WatchResponse{Events: []*meshfedv1.Event{{Object: benchCluster("w-7", []byte("x"))}}})
	f.Add(b)
	f.Add([]byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := namesOf(b)
		want, ferr := fullNames(b)
		if err == nil && ferr == nil && !slices.Equal(got, want) && len(want) == len(got) {
			t.Fatalf("names %q, a full decode reads %q", got, want)
		}
	})
}
