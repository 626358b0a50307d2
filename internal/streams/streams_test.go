package streams

import (
	"errors"
	"io"
	"testing"
)

type sliceStream struct {
	msgs []string
	end  error
}

func (s *sliceStream) Recv() (string, error) {
	if len(s.msgs) == 0 {
		return "", s.end
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

func TestEach(t *testing.T) {
	var got []string
	collect := func(m string) error { got = append(got, m); return nil }
	if err := Each(&sliceStream{msgs: []string{"a", "b"}, end: io.EOF}, collect); err != nil || len(got) != 2 {
		t.Fatalf("at EOF: err %v, got %v", err, got)
	}
	broken := errors.New("broken")
	if err := Each(&sliceStream{msgs: []string{"a"}, end: broken}, collect); !errors.Is(err, broken) {
		t.Fatalf("on a Recv error: %v", err)
	}
	stop := errors.New("stop")
	n := 0
	err := Each(&sliceStream{msgs: []string{"a", "b", "c"}, end: io.EOF}, func(string) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("when fn fails: err %v after %d calls", err, n)
	}
}
