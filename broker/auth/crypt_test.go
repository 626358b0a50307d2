package auth

import (
	"crypto/des"
	"testing"
)

// bits spreads bytes into one bit per byte, most significant first.
func bits(b []byte) [64]byte {
	var out [64]byte
	for i := 0; i < 64; i++ {
		out[i] = (b[i/8] >> (7 - i%8)) & 1
	}
	return out
}

// TestDESMatchesStdlib checks the bitwise DES used by crypt(3) against
// crypto/des with the standard (unsalted) expansion table.
func TestDESMatchesStdlib(t *testing.T) {
	for _, tc := range []struct{ key, block string }{
		{"\x13\x34\x57\x79\x9b\xbc\xdf\xf1", "\x01\x23\x45\x67\x89\xab\xcd\xef"},
		{"abcdefgh", "\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"\xff\xfe\xfd\xfc\x01\x02\x03\x04", "meshfed!"},
	} {
		c, err := des.NewCipher([]byte(tc.key))
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 8)
		c.Encrypt(want, []byte(tc.block))
		ks := desKeySchedule(bits([]byte(tc.key)))
		e := desE
		got := desEncryptBits(bits([]byte(tc.block)), &ks, &e)
		if got != bits(want) {
			t.Errorf("key %x block %x: bitwise DES differs from crypto/des", tc.key, tc.block)
		}
	}
}

// Expected values come from the C library's crypt(3) (perl's crypt) and
// from openssl passwd -1 / -apr1.
func TestCryptVectors(t *testing.T) {
	for _, tc := range []struct{ pw, salt, want string }{
		{"test", "ab", "abgOeLfPimXQo"},
		{"123456", "Xy", "Xy2br74T09EYU"},
		{"longerpassword9", "./", "./4sDHqz8kBUM"},
		{"a", "zZ", "zZ/Dc0K.bMxrQ"},
		{"pässwörd", "q9", "q9HIzkfXnDyAI"},
	} {
		if got, ok := desCrypt([]byte(tc.pw), tc.salt); !ok || got != tc.want {
			t.Errorf("crypt(%q, %q) = %q, want %q", tc.pw, tc.salt, got, tc.want)
		}
	}
	for _, tc := range []struct{ pw, magic, salt, want string }{
		{"123456", "$apr1$", "FG4AO6aX", "$apr1$FG4AO6aX$KGYPuMoLUou3i6vUkPUUf."},
		{"123456", "$1$", "FG4AO6aX", "$1$FG4AO6aX$SjM2ybVttOaBSz21zy958/"},
		{"secret", "$apr1$", "abc", "$apr1$abc$PZF73YJz5hJ9yyI.7OP.R."},
		{"secret", "$1$", "abc", "$1$abc$iCQ2D3nhptRYi27fDYv2s1"},
		{"x", "$apr1$", "12345678", "$apr1$12345678$zbBEMgfXu4mAHPrplrtNt."},
	} {
		if got := md5Crypt([]byte(tc.pw), tc.magic, tc.salt); got != tc.want {
			t.Errorf("md5crypt(%q, %q%s) = %q, want %q", tc.pw, tc.magic, tc.salt, got, tc.want)
		}
	}
	if _, ok := desCrypt([]byte("x"), "a"); ok {
		t.Error("a one-character salt was accepted")
	}
	if _, ok := desCrypt([]byte("x"), "a!"); ok {
		t.Error("a salt outside the crypt alphabet was accepted")
	}
}
