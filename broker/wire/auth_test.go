package wire

import (
	"bufio"
	"bytes"
	"testing"
)

// TestAuthCommands round-trips CONNECT with credentials, AUTH_RESPONSE and
// AUTH_CHALLENGE through the decoders.
func TestAuthCommands(t *testing.T) {
	f, err := ReadFrame(bufio.NewReader(bytes.NewReader(AppendFrame(nil, ConnectAuthCmd("v1", 20, "token", []byte("jwt"))))), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	c := f.Cmd.Connect
	if c == nil || c.ClientVersion != "v1" || c.ProtocolVersion != 20 || c.AuthMethodName != "token" || !c.HasAuthMethodName ||
		string(c.AuthData) != "jwt" || !c.SupportsAuthRefresh {
		t.Fatalf("CONNECT decoded as %+v", c)
	}
	f, err = ReadFrame(bufio.NewReader(bytes.NewReader(AppendFrame(nil, ConnectCmd("v1", 20)))), 1<<20)
	if err != nil || f.Cmd.Connect.HasAuthMethodName || len(f.Cmd.Connect.AuthData) != 0 {
		t.Fatalf("CONNECT without credentials: %+v, %v", f.Cmd.Connect, err)
	}
	f, err = ReadFrame(bufio.NewReader(bytes.NewReader(AppendFrame(nil, AuthResponseCmd("v1", 20, "token", []byte("fresh"))))), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if ar := f.Cmd.AuthResponse; ar == nil || ar.AuthMethodName != "token" || string(ar.AuthData) != "fresh" || ar.ProtocolVersion != 20 {
		t.Fatalf("AUTH_RESPONSE decoded as %+v", f.Cmd.AuthResponse)
	}
	// An AUTH_RESPONSE without its response is malformed.
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(AppendFrame(nil, base(TypeAuthResponse, enc{0x0a, 1, 'v'})))), 1<<20); err == nil {
		t.Fatal("AUTH_RESPONSE without response accepted")
	}
	r, err := DecodeResponse(AuthChallenge("s", 20, "token", []byte("refresh")))
	if err != nil {
		t.Fatal(err)
	}
	if ac := r.AuthChallenge; ac == nil || ac.AuthMethodName != "token" || string(ac.AuthData) != "refresh" || ac.ProtocolVersion != 20 {
		t.Fatalf("AUTH_CHALLENGE decoded as %+v", r.AuthChallenge)
	}
}
